"""Ingest CPU per record on the pure path, side by side with its floor and the baseline.

pipeline: ``ingest.bodies.parse_body`` + ``ingest.normalize.normalize`` (parse, validate, normalize,
serialize each envelope), as ``IngestService.ingest`` runs them for one request. floor: bare
``orjson.loads`` of the body and ``orjson.dumps`` of each record, the least any implementation must do
with the same bytes. baseline: ``baseline.parse_and_envelope`` (stdlib json, minimal envelope).
The three run interleaved, round after round; figures are medians over rounds (ratios: the median of
each round's own ratio), so a noisy neighbour slows all three alike.

Each case gives two rows: the pipeline as above (the path the floor target applies to), and the same
pipeline with ingest-side redaction (``INGEST_REDACTION``, on by default), timed in the same rounds:
its own figure, the price of nothing raw on the queue and the stream.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson

from core import redaction
from core.envelope import now_received_at
from core.settings import IngestSettings
from ingest.bodies import Limits, parse_body
from ingest.normalize import RequestFacts, normalize
from loadtest.bench import baseline, workload

LIMITS = Limits.from_settings(IngestSettings.from_env({"QUEUE_URL": "bench", "STREAM_NAME": "bench"}))
# (name, body, content type, kind, records)
CASES = (
    ("1 KB JSON event, 1 per request", workload.event_body(1), "application/json", "event", 1),
    ("1 KB JSON events, 100 per request", workload.event_body(100), "application/json", "event", 100),
    ("text log lines, 100 per request", workload.log_body(100), "text/plain", "log", 100),
)


def _facts(kind: str, request_id: str = "bench-request") -> RequestFacts:
    return RequestFacts(route="POST /events" if kind == "event" else "POST /ingest", kind=kind,
                        received_at=now_received_at(), default_tenant="default", ip="203.0.113.7",
                        user_agent="bench/1.0", request_id=request_id)  # fmt: skip


def implementations(body: bytes, content_type: str, kind: str, records: int) -> dict[str, Callable[[], Any]]:
    dumps, loads = orjson.dumps, orjson.loads

    redactor = redaction.load()

    def pipeline() -> Any:
        facts = _facts(kind)
        parsed = parse_body(body, content_type, kind, LIMITS)
        return normalize(parsed.items, facts, LIMITS.max_record_bytes, LIMITS.max_depth)

    def redacted() -> Any:
        facts = _facts(kind)
        parsed = parse_body(body, content_type, kind, LIMITS)
        return normalize(parsed.items, facts, LIMITS.max_record_bytes, LIMITS.max_depth, redactor=redactor)

    if kind == "log":
        floor: Callable[[], Any] = lambda: [dumps(line) for line in body.decode().split("\n") if line]  # noqa: E731
    elif records == 1:
        floor = lambda: dumps(loads(body))  # noqa: E731
    else:
        floor = lambda: [dumps(item) for item in loads(body)]  # noqa: E731
    return {"pipeline": pipeline, "floor": floor,
            "baseline": lambda: baseline.parse_and_envelope(body, content_type, kind), "redacted": redacted}  # fmt: skip


def _time_per_record(fn: Callable[[], Any], records: int, budget_s: float) -> float:
    """CPU µs per record over as many calls as fit in ``budget_s`` of CPU time (at least 3)."""
    clock = time.process_time_ns
    fn()  # warm caches and lazily compiled regexes
    calls, start = 0, clock()
    deadline = start + budget_s * 1e9
    while calls < 3 or clock() < deadline:
        fn()
        calls += 1
    return (clock() - start) / 1000 / calls / records


def _row(name: str, records: int, body: bytes, samples: dict[str, list[float]], pipeline: str,
         rounds: int) -> dict[str, Any]:  # fmt: skip
    pairs = list(zip(samples[pipeline], samples["floor"], samples["baseline"], strict=True))
    return {
        "case": name, "records": records, "body_bytes": len(body),
        "us_per_record": {k: statistics.median(samples[v]) for k, v in
                          (("pipeline", pipeline), ("floor", "floor"), ("baseline", "baseline"))},
        "ratio_to_floor": statistics.median(p / f for p, f, _ in pairs),
        "baseline_ratio_to_floor": statistics.median(b / f for _, f, b in pairs),
        "ratio_to_baseline": statistics.median(p / b for p, _, b in pairs),
        "rounds": rounds, "ingest_redaction": pipeline == "redacted",
    }  # fmt: skip


def run(rounds: int = 9, budget_s: float = 0.15) -> list[dict[str, Any]]:
    """Per case: median µs/record of each implementation and the median per-round ratios, in two rows:
    without ingest-side redaction, then with it (``ingest_redaction: True``)."""
    results = []
    for name, body, content_type, kind, records in CASES:
        impls = implementations(body, content_type, kind, records)
        samples: dict[str, list[float]] = {k: [] for k in impls}
        for _ in range(rounds):
            for impl, fn in impls.items():
                samples[impl].append(_time_per_record(fn, records, budget_s))
        results.append(_row(name, records, body, samples, "pipeline", rounds))
        results.append(_row(f"{name}, ingest redaction on", records, body, samples, "redacted", rounds))
    return results


def envelope_overhead_bytes() -> int:
    """Serialized envelope size minus the event's own size, for a 1 KB event (the cost model's input)."""
    parsed = parse_body(workload.event_body(1), "application/json", "event", LIMITS)
    facts = _facts("event", "JKJaXmPLvHcESHA=")
    (_, _, _, size), *_ = normalize(parsed.items, facts, LIMITS.max_record_bytes, LIMITS.max_depth).accepted
    return size - workload.EVENT_BYTES
