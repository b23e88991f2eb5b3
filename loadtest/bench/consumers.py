"""Consumer CPU on the shared corpus: ``python -m loadtest.bench.consumers [--records N] [--corpus DIR]``.

Redaction microseconds per KB of GitHub webhook JSON and per log line (IP redaction off and on), and
the worker's own per-record cost (parse, validate, redact, build the item) without any DynamoDB call.
The worker's throughput through its real handler is the end-to-end part of ``make bench``. Needs the
corpus at ../shared/corpus (or --corpus).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from consumers.worker.items import prepare_record
from core import envelope, redaction
from core.ids import new_event_id

DEFAULT_CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


def _best_of(runs: int, fn: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run(corpus: Path, records: int) -> dict[str, float]:
    docs = [orjson.loads(p.read_bytes()) for p in sorted((corpus / "webhooks" / "github").glob("*.json"))]
    texts = [orjson.dumps(d).decode() for d in docs]
    lines = [line for p in sorted((corpus / "logs").glob("*.log"))
             for line in p.read_text(errors="replace").splitlines()]  # fmt: skip
    out = {}
    for label, ip in (("", False), ("_ip", True)):
        r = redaction.load("", ip)
        json_s = _best_of(5, lambda r=r: [r.redact_value(d, {}, t) for d, t in zip(docs, texts, strict=True)])
        log_s = _best_of(5, lambda r=r: [r.redact_text(line, {}) for line in lines])
        out[f"json_us_per_kb{label}"] = json_s / (sum(len(t) for t in texts) / 1024) * 1e6
        out[f"log_us_per_line{label}"] = log_s / len(lines) * 1e6
    bodies = []
    for n in range(records):
        env: dict[str, Any] = {"v": 1, "tenant_id": "bench", "event_id": new_event_id(),
                               "received_at": envelope.now_received_at(),
                               "source": {"route": "POST /events", "ip": "203.0.113.7"}}  # fmt: skip
        if n % 2:
            env.update(kind="event", type="github", payload=docs[n % len(docs)])
        else:
            env.update(kind="log", text=lines[n % len(lines)])
        bodies.append(envelope.dumps(env))
    r, stamp = redaction.load(), envelope.now_received_at()
    own = _best_of(3, lambda: [prepare_record(b, r, retention_days=30, stored_at=stamp) for b in bodies])
    out.update(avg_body_chars=sum(len(b) for b in bodies) / records, prepare_us_per_record=own / records * 1e6,
               prepare_records_per_s=records / own)  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--records", type=int, default=2000)
    args = parser.parse_args()
    for name, value in run(args.corpus, args.records).items():
        print(f"{name:24} {value:12.1f}")


if __name__ == "__main__":
    main()
