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
# Verified webhook deliveries derive their ids in a namespace of their own, with the webhook source in the
# name: no producer-supplied id (``POST /events {"event_id": ...}``) and no other source can derive them.
WEBHOOK_ID_NAMESPACE = uuid.UUID("0c9a4f5e-2b7d-4e61-8f3a-6d1c2e9b7a54")

_lock = threading.Lock()
# Where the last id stands: its millisecond << 12 | its 12-bit counter. Ids take consecutive slots, so
# a counter that runs past 0xFFF borrows the next millisecond by plain addition.
_last_slot = 0
# The random bits make ids unique across processes (the counter does within one); they need not be
# secret, so a generator seeded from the OS spares a system call per id.
_rng = random.Random(os.urandom(32))
_MS_MASK = (1 << 48) - 1


def _reserve(n: int) -> int:
    """The first of ``n`` consecutive slots, each after every slot handed out before (n >= 1).

    This is the counter of RFC 9562 §6.2, method 1: ids stay strictly increasing within one process even
    when many are made in the same millisecond, so a tenant's sort keys follow arrival order.
    """
    global _last_slot
    with _lock:
        ms = time.time_ns() // 1_000_000
        # A new millisecond starts its counter at a random 10-bit value, leaving room to count up.
        first = ms << 12 | _rng.getrandbits(10) if ms > _last_slot >> 12 else _last_slot + 1
        _last_slot = first + n - 1
    return first


def new_event_id() -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then a 12-bit counter and 62 random bits."""
    slot = _reserve(1)
    rand = _rng.getrandbits(62)
    value = ((slot >> 12) & _MS_MASK) << 80 | 0x7 << 76 | (slot & 0xFFF) << 64 | 0b10 << 62 | rand
    # The canonical 8-4-4-4-12 text, formatted directly: str(uuid.UUID(int=...)) costs 2.5x as much.
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}  # 0b10 + two random bits


def new_event_ids(n: int) -> list[str]:
    """``n`` ids as ``new_event_id`` makes them, from one reservation of ``n`` consecutive slots.

    A request of 100 events needs 100 ids: one lock and clock read for all of them, the millisecond
    prefix formatted once and the random bits drawn as one hex string cost 0.7 µs an id here, against
    2 µs for a ``new_event_id`` call.
    """
    if n < 2:
        return [new_event_id() for _ in range(n)]  # cheaper alone: no batch bookkeeping
    first = _reserve(n)
    hexes = _rng.randbytes(8 * n).hex()  # 62 random bits per id: 2 in the variant digit, 60 after
    out: list[str] = []
    at, slot, end = 0, first, first + n
    while slot < end:  # one run of slots per millisecond, its prefix formatted once
        ms = slot >> 12
        stop = min(end, (ms + 1) << 12)
        head = f"{(ms >> 16) & 0xFFFFFFFF:08x}-{ms & 0xFFFF:04x}-7"
        for counter in range(slot & 0xFFF, (slot & 0xFFF) + stop - slot):
            r = hexes[at : at + 16]
            at += 16
            out.append(f"{head}{counter:03x}-{_VARIANT[r[0]]}{r[1:4]}-{r[4:]}")
        slot = stop
    return out


def derive_event_id(tenant_id: str, kind: str, client_id: str) -> str:
    """The id of a record whose producer supplied its own identity: the same inputs give the same id."""
    return str(uuid.uuid5(CLIENT_ID_NAMESPACE, f"{tenant_id}\x1f{kind}\x1f{client_id}"))


def derive_webhook_event_id(tenant_id: str, source: str, identity: str) -> str:
    """The id of a verified webhook delivery: (tenant, webhook source, signed identity) in the webhook
    namespace, apart from every id ``derive_event_id`` can give."""
    return str(uuid.uuid5(WEBHOOK_ID_NAMESPACE, f"{tenant_id}\x1fwebhook\x1f{source}\x1f{identity}"))


def event_id_time_ms(event_id: str) -> int | None:
    """The creation time in Unix ms of a server-assigned (UUIDv7) id; None for a derived one."""
    u = uuid.UUID(event_id)
    return u.int >> 80 if u.version == 7 else None
