"""Helpers for tests against the real local stack: start it, post to it, read what landed.

The test's own reads go straight to the emulator (never through a chaos proxy) with patient clients:
a full scan of a busy emulator may take longer than the handlers' 5 s read timeout.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from core import aws
from local import emulator
from local.inspect import StackInspector
from local.runtime import LocalRuntime, RuntimeOptions


@contextmanager
def local_stack(tmp_path: Path, prefix: str, **options: Any) -> Iterator[LocalRuntime]:
    """A LocalRuntime on free ports; the process environment is restored afterwards."""
    saved = dict(os.environ)
    opts = RuntimeOptions(port=emulator.free_port(), emulator_port=emulator.free_port(),
                          state_dir=tmp_path / "state", prefix=prefix, **options)  # fmt: skip
    try:
        with LocalRuntime(opts) as runtime:
            yield runtime
    finally:
        os.environ.clear()
        os.environ.update(saved)
        aws.client.cache_clear()


def inspector(runtime: LocalRuntime) -> StackInspector:
    """A patient inspector of the runtime's emulator itself, bypassing any chaos proxy."""
    assert runtime.stack is not None
    return StackInspector.for_stack(runtime.stack, read_timeout=120)


def post(
    url: str, body: bytes, headers: dict[str, str], timeout: float = 60
) -> tuple[int, dict[str, str], Any]:
    """(status, lower-cased headers, parsed JSON body or raw bytes)."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the local API
            status, hdrs, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, hdrs, raw = exc.code, dict(exc.headers), exc.read()
    try:
        parsed: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = raw
    return status, {k.lower(): v for k, v in hdrs.items()}, parsed


@dataclass
class Sender:
    """Posts JSON batches the way a well-behaved client does: on 503 it waits Retry-After and resends
    the same request with the same Idempotency-Key. Records what was accepted."""

    api: str
    accepted: dict[str, set[str]] = field(default_factory=dict)
    requests: int = 0
    retries_503: int = 0
    retry_after_seen: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, tenant: str, key: str, records: list[dict[str, Any]], max_wait: float = 180) -> list[str]:
        headers = {"content-type": "application/json", "x-tenant-id": tenant, "idempotency-key": key}
        deadline = time.monotonic() + max_wait
        while True:
            status, hdrs, body = post(f"{self.api}/events", orjson.dumps(records), headers)
            with self.lock:
                self.statuses[status] += 1
            if status == 202:
                assert body["accepted"] == len(records), body
                with self.lock:
                    self.requests += 1
                    self.accepted.setdefault(tenant, set()).update(body["event_ids"])
                return list(body["event_ids"])
            assert status == 503, (status, body)
            assert time.monotonic() < deadline, "the API kept answering 503"
            with self.lock:
                self.retries_503 += 1
                self.retry_after_seen.add(hdrs.get("retry-after", ""))
            time.sleep(min(float(hdrs.get("retry-after") or 1), 2.0))

    def send_many(self, tenant: str, batches: int, per_batch: int, threads: int = 4, tag: str = "b") -> None:
        def work(n: int) -> None:
            for b in range(n, batches, threads):
                records = [{"type": "fault-test", "batch": b, "i": i} for i in range(per_batch)]
                self.send(tenant, f"{tag}-{b}", records)

        run_threads(work, threads)

    @property
    def all(self) -> set[tuple[str, str]]:
        return {(t, e) for t, ids in self.accepted.items() for e in ids}


def run_threads(work: Callable[[int], None], n: int) -> None:
    """Run ``work(i)`` for i in range(n) in threads; re-raise the first failure."""
    errors: list[BaseException] = []

    def wrapped(i: int) -> None:
        try:
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def wait_for(condition: Callable[[], bool], timeout: float = 240, interval: float = 1.0) -> bool:
    """Poll ``condition`` until true or ``timeout``; the caller asserts on the state, not on this."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def rss_bytes(pid: int | str = "self") -> tuple[int, int]:
    """(current RSS, peak RSS) of a process from /proc, in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]
