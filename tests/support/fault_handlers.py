"""Handlers that wrap the real ones and crash on purpose, wired in with ``RuntimeOptions.handlers``.

Each crash happens *after* the real handler has applied the first half of the batch, the nastiest
moment: part of the effect is done, the invocation fails, the event source redelivers the whole batch
(SQS after the visibility timeout; Kinesis bisecting it, as the mapping is configured).

The local ContainerPool loads one private copy of this module per execution environment. Each copy
loads its own private copy of the real handler (as separate environments on AWS would have), while
the crash plan and the counters live in the one canonical module in ``sys.modules``, shared by all.
"""

from __future__ import annotations

import importlib
import threading
from collections import Counter
from typing import Any

from local.sources import Handler, load_container

REAL = {
    "worker": "consumers.worker.handler.lambda_handler",
    "archiver": "consumers.archiver.handler.lambda_handler",
    "rollup": "consumers.rollup.handler.lambda_handler",
}
LOCK = threading.Lock()
PLAN: dict[str, tuple[int, int]] = {}  # function -> (crashes still to inject, crash every n-th invocation)
CALLS: Counter[str] = Counter()
CRASHES: Counter[str] = Counter()
QUEUE_BODIES: list[str] = []  # every SQS message body the recording worker was handed
DEAD_LETTER_TAG = "dead-letter-me"  # a record whose body holds this is failed by the recording worker, always


class InjectedCrash(RuntimeError):
    """The function failed on purpose, after applying part of its batch."""


def _shared() -> Any:
    return importlib.import_module(__name__)


def arm(function: str, crashes: int, every: int = 2) -> None:
    """Crash ``function`` on every ``every``-th invocation (of a batch of 2+), ``crashes`` times in all."""
    shared = _shared()
    with shared.LOCK:
        shared.PLAN[function] = (crashes, every)
        shared.CALLS[function] = 0
        shared.CRASHES[function] = 0


def disarm() -> None:
    shared = _shared()
    with shared.LOCK:
        shared.PLAN.clear()


def _crash_now(function: str, batch: int) -> bool:
    shared = _shared()
    with shared.LOCK:
        left, every = shared.PLAN.get(function, (0, 1))
        if batch < 2 or left <= 0:
            return False
        shared.CALLS[function] += 1
        if shared.CALLS[function] % every:
            return False
        shared.PLAN[function] = (left - 1, every)
        shared.CRASHES[function] += 1
        return True


_real: dict[str, Handler] = {}


def _wrap(function: str, event: dict[str, Any], context: Any) -> Any:
    if function not in _real:
        _real[function] = load_container(REAL[function])
    real = _real[function]
    records = event["Records"]
    if _crash_now(function, len(records)):
        real({**event, "Records": records[: len(records) // 2]}, context)
        raise InjectedCrash(
            f"{function} crashed after applying {len(records) // 2} of {len(records)} records"
        )
    return real(event, context)


def worker_handler(event: dict[str, Any], context: Any) -> Any:
    return _wrap("worker", event, context)


def archiver_handler(event: dict[str, Any], context: Any) -> Any:
    return _wrap("archiver", event, context)


def rollup_handler(event: dict[str, Any], context: Any) -> Any:
    return _wrap("rollup", event, context)


def recording_worker_handler(event: dict[str, Any], context: Any) -> Any:
    """The real worker, recording every queue body it is handed (what the queue holds, as delivered);
    records holding ``DEAD_LETTER_TAG`` are reported failed every time, so the redrive policy moves
    them to the DLQ."""
    shared = _shared()
    records = event["Records"]
    with shared.LOCK:
        shared.QUEUE_BODIES.extend(r["body"] for r in records)
    doomed = [{"itemIdentifier": r["messageId"]} for r in records if DEAD_LETTER_TAG in r["body"]]
    rest = [r for r in records if DEAD_LETTER_TAG not in r["body"]]
    if "worker" not in _real:
        _real["worker"] = load_container(REAL["worker"])
    response = _real["worker"]({**event, "Records": rest}, context) if rest else {"batchItemFailures": []}
    return {"batchItemFailures": [*response.get("batchItemFailures", []), *doomed]}
