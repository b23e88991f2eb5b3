"""Event ids: time-ordered when the server assigns them, deterministic when the client supplied one."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid

# A fixed namespace so that (tenant, kind, client id) maps to the same UUIDv5 in every deployment:
# a client retrying after a 503 gets the same ids and storage overwrites instead of duplicating.
CLIENT_ID_NAMESPACE = uuid.UUID("6f2b8c3e-5d1a-4c57-9a0e-3b7e1f0d4a21")

_lock = threading.Lock()
_last_ms = 0
_seq = 0
# The random bits make ids unique across processes (the counter does within one); they need not be
# secret, so a generator seeded from the OS spares a system call per id.
_rng = random.Random(os.urandom(32))


def new_event_id() -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then a 12-bit counter and 62 random bits.

    The counter (method 1 of RFC 9562 §6.2) keeps ids strictly increasing within one process even when
    many are made in the same millisecond, so a tenant's sort keys follow arrival order.
    """
    global _last_ms, _seq
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms, _seq = ms, _rng.getrandbits(10)  # leave room to count up
        else:
            _seq += 1
            if _seq > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms, _seq = _last_ms + 1, 0
            ms = _last_ms
        seq = _seq  # read under the lock: another thread may move it on as soon as it is released
    rand = _rng.getrandbits(62)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | rand
    # The canonical 8-4-4-4-12 text, formatted directly: str(uuid.UUID(int=...)) costs 2.5x as much.
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}  # 0b10 + two random bits


def new_event_ids(n: int) -> list[str]:
    """``n`` UUIDv7s as ``new_event_id`` makes them, strictly increasing, for one lock and one clock read.

    A request of 100 events needs 100 ids: reserving their counters at once and formatting the text
    with the millisecond prefix once and the random bits as one hex string costs 0.7 µs an id here,
    against 1.8 µs for a ``new_event_id`` call.
    """
    if n == 1:
        return [new_event_id()]  # cheaper alone: no batch bookkeeping
    global _last_ms, _seq
    blocks: list[tuple[int, int, int]] = []  # (ms, first counter, how many)
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            seq = _rng.getrandbits(10)  # leave room to count up
        else:
            ms, seq = _last_ms, _seq + 1
        left = n
        while left:
            if seq > 0xFFF:  # counter exhausted: borrow the next millisecond
                ms, seq = ms + 1, 0
            take = min(left, 0x1000 - seq)
            blocks.append((ms, seq, take))
            left -= take
            seq += take
        if n:
            _last_ms, _seq = ms, seq - 1  # the last counter used
        hexes = _rng.randbytes(8 * n).hex()  # 62 random bits per id: 2 in the variant digit, 60 after
    out: list[str] = []
    at = 0
    for ms, first, count in blocks:
        head = f"{(ms >> 16) & 0xFFFFFFFF:08x}-{ms & 0xFFFF:04x}-7"
        for counter in range(first, first + count):
            r = hexes[at : at + 16]
            at += 16
            out.append(f"{head}{counter:03x}-{_VARIANT[r[0]]}{r[1:4]}-{r[4:]}")
    return out


def derive_event_id(tenant_id: str, kind: str, client_id: str) -> str:
    """The id of a record whose producer supplied its own identity: the same inputs give the same id."""
    return str(uuid.uuid5(CLIENT_ID_NAMESPACE, f"{tenant_id}\x1f{kind}\x1f{client_id}"))


def event_id_time_ms(event_id: str) -> int | None:
    """The creation time in Unix ms of a server-assigned (UUIDv7) id; None for a derived one."""
    u = uuid.UUID(event_id)
    return u.int >> 80 if u.version == 7 else None
