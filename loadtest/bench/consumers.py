"""Micro-benchmarks of the consumers on the shared corpus: ``python -m loadtest.bench.consumers [--records N]``.

- redaction cost: microseconds per KB of GitHub webhook JSON and per log line (IP redaction off and on);
- worker throughput: records per second through ``consumers.worker.handler.lambda_handler`` (parse, validate,
  redact, build items, BatchWriteItem) against moto's in-process DynamoDB mock, in batches of 100.

moto's mock is not DynamoDB: the throughput is the worker's own CPU cost plus moto's, a floor for
sizing, not a prediction. Needs the corpus at ../shared/corpus (or --corpus) and moto installed.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from core import envelope, redaction
from core.ids import new_event_id

DEFAULT_CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


def _best_of(runs: int, fn: Any) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def redaction_cost(corpus: Path) -> dict[str, float]:
    docs = [orjson.loads(p.read_bytes()) for p in sorted((corpus / "webhooks" / "github").glob("*.json"))]
    texts = [orjson.dumps(d).decode() for d in docs]
    kb = sum(len(t) for t in texts) / 1024
    lines = [
        line
        for p in sorted((corpus / "logs").glob("*.log"))
        for line in p.read_text(errors="replace").splitlines()
    ]
    out = {}
    for label, ip in (("", False), ("_ip", True)):
        r = redaction.load("", ip)
        json_s = _best_of(5, lambda r=r: [r.redact_value(d, {}, t) for d, t in zip(docs, texts, strict=True)])
        log_s = _best_of(5, lambda r=r: [r.redact_text(line, {}) for line in lines])
        out[f"json_us_per_kb{label}"] = json_s / kb * 1e6
        out[f"log_us_per_line{label}"] = log_s / len(lines) * 1e6
    return out


def worker_throughput(corpus: Path, records: int) -> dict[str, float]:
    import boto3
    from moto import mock_aws

    from consumers.worker import handler as worker
    from local.sources import LambdaContext
    from local.stack import create_table

    payloads = [orjson.loads(p.read_bytes()) for p in sorted((corpus / "webhooks" / "github").glob("*.json"))]
    lines = (corpus / "logs" / "OpenSSH_2k.log").read_text(errors="replace").splitlines()
    bodies = []
    for n in range(records):
        env: dict[str, Any] = {
            "v": 1,
            "tenant_id": "bench",
            "event_id": new_event_id(),
            "received_at": envelope.now_received_at(),
            "source": {"route": "POST /events", "ip": "203.0.113.7"},
        }
        if n % 2:
            env.update(kind="event", type="github", payload=payloads[n % len(payloads)])
        else:
            env.update(kind="log", text=lines[n % len(lines)])
        bodies.append(envelope.dumps(env))
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        TABLE_NAME="bench-events",
        POWERTOOLS_METRICS_NAMESPACE="bench",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )
    worker.metrics.namespace = "bench"
    with mock_aws():
        create_table(boto3.client("dynamodb"), "events", "bench-events")
        worker.settings.cache_clear()
        worker.event_store.cache_clear()
        batches = [
            {
                "Records": [
                    {"messageId": str(uuid.uuid4()), "body": b, "attributes": {}} for b in bodies[i : i + 100]
                ]
            }
            for i in range(0, len(bodies), 100)
        ]
        import contextlib
        import io

        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the EMF blobs
            failed = sum(
                len(worker.lambda_handler(b, LambdaContext("bench", 30))["batchItemFailures"])
                for b in batches
            )
        elapsed = time.perf_counter() - start
    chars = sum(len(b) for b in bodies)
    # The worker's own share: parse, validate, redact and build the item, without any DynamoDB call.
    from consumers.worker.items import prepare_record

    r = redaction.load()
    stamp = envelope.now_received_at()
    own = _best_of(3, lambda: [prepare_record(b, r, retention_days=30, stored_at=stamp) for b in bodies])
    return {
        "records": records,
        "failed": failed,
        "records_per_s": records / elapsed,
        "avg_body_chars": chars / records,
        "prepare_us_per_record": own / records * 1e6,
        "prepare_records_per_s": records / own,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--records", type=int, default=2000)
    args = parser.parse_args()
    for name, value in {
        **redaction_cost(args.corpus),
        **worker_throughput(args.corpus, args.records),
    }.items():
        print(f"{name:24} {value:12.1f}")


if __name__ == "__main__":
    main()
