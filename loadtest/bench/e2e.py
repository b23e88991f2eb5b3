"""End to end against the emulator: records/s from POST to DynamoDB, AWS usage per record, log bytes.

Each scenario runs in its own child process (``python -m loadtest.bench.e2e SCENARIO ...``): the
handlers start cold with the scenario's environment, and everything they write to stdout (Powertools
Logger lines and EMF metrics: what CloudWatch Logs would ingest) is captured by the parent between two
markers and counted. The child runs ``local.runtime.LocalRuntime`` in its own process, so that botocore
hooks (``counter.AwsCallCounter``) and handler timers see every call, and loads it with the load
driver's direct posting (``loadtest.run``), which also waits for and counts what was stored.

Scenarios:
- ``pipeline``: the real handlers at INFO with metrics on, as deployed; then the emulator's own
  capacity for the same calls in a tight loop on the same emulator, no handlers.
- ``baseline``: ``baseline.py``'s handlers in place of ingest and worker, no stream consumers.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from loadtest.bench import workload

MARK_START = "@@bench-start@@"
MARK_END = "@@bench-end@@"
SERVICES = ("sqs", "kinesis", "dynamodb", "s3")
BASELINE = {
    "ingest": "loadtest.bench.baseline.ingest_handler",
    "worker": "loadtest.bench.baseline.worker_handler",
}


def _wait_until(predicate: Callable[[], bool], timeout: float, every: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


def _stats_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"http_requests": after["http_requests"] - before["http_requests"]}
    for key, value in after.items():
        if isinstance(value, dict):
            out[key] = {k: v - before.get(key, {}).get(k, 0) for k, v in value.items()}
    return out


def _consumed(stats: dict[str, Any]) -> dict[str, int]:
    return {k: v["records"] for k, v in stats.items() if k.startswith("consumer:")}


def scenario(args: argparse.Namespace) -> dict[str, Any]:
    """One scenario's runs against a fresh in-process stack, in the child."""
    from core import aws, wiring
    from loadtest import run
    from loadtest.bench.counter import AwsCallCounter
    from local import runtime as rt
    from local.emulator import free_port

    baseline = args.scenario == "baseline"
    handlers = BASELINE if baseline else {}
    names = {dotted: fn for fn, dotted in {**wiring.load().handlers, **handlers}.items()}
    # Wall time inside each handler, per function: Lambda's billed duration, locally.
    seconds: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    lock = threading.Lock()

    class TimedPool(rt.ContainerPool):  # type: ignore[misc,name-defined]
        """The runtime's pool of execution environments, timing every invocation."""

        def __call__(self, event: Any, context: Any) -> Any:
            start = time.perf_counter()
            try:
                return super().__call__(event, context)
            finally:
                with lock:
                    seconds[names.get(self.dotted, "consumers")] += time.perf_counter() - start
                    calls[names.get(self.dotted, "consumers")] += 1

    rt.ContainerPool = TimedPool  # type: ignore[attr-defined,misc]
    options = rt.RuntimeOptions(
        port=free_port(), emulator_port=free_port(), prefix=f"bench-{args.scenario}",
        state_dir=Path(args.state_dir), handlers=handlers,
        extra_env={"POWERTOOLS_LOG_LEVEL": "INFO", "POWERTOOLS_METRICS_DISABLED": "false",
                   "POWERTOOLS_SERVICE_NAME": "sluice", "POWERTOOLS_METRICS_NAMESPACE": "sluice"},
    )  # fmt: skip
    counter = AwsCallCounter()
    with rt.LocalRuntime(options) as runtime:
        stack = runtime.stack
        assert stack is not None
        if baseline:  # a first version has no stream consumers
            for consumer in runtime.consumers:
                consumer.stop()
            runtime.consumers = []

        def drive(records: int, batch: int, concurrency: int, start: int) -> dict[str, Any]:
            bodies = [
                workload.event_body(min(batch, records - i), start + i) for i in range(0, records, batch)
            ]
            consumed = _consumed(runtime.stats())
            s = run.execute(run.RunOptions(
                host=runtime.api_url, table=stack.table_name, endpoint_url=stack.endpoint_url,
                region=stack.region, post=bodies, post_concurrency=concurrency, drain_timeout=args.timeout,
                out=Path(args.state_dir) / f"run-{start}", quiet=True,
            )).summary  # fmt: skip
            _wait_until(
                lambda: all(n >= consumed.get(k, 0) + records for k, n in _consumed(runtime.stats()).items()),
                60,
            )
            return {"records": records, "batch": batch, "requests": len(bodies), "stored": s["records_stored"],
                    "all_stored": s["all_stored"], "seconds": s["stored_after_s"],
                    "records_per_second": records / s["stored_after_s"]}  # fmt: skip

        drive(10, 10, 1, 10**6)  # warm: imports, clients, connections
        for service in SERVICES:
            for client in aws.client.made(service):
                counter.attach(client)
        runs = []
        start = 0
        for batch, records in args.runs:
            counter.reset()
            with lock:
                seconds.clear()
                calls.clear()
            before = runtime.stats()
            print(f"{MARK_START} {batch}", flush=True)
            result = drive(records, batch, args.concurrency, start)
            print(f"{MARK_END} {batch}", flush=True)
            result.update(aws=counter.snapshot(), item_bytes=dict(counter.item_bytes),
                          invocations=_stats_delta(before, runtime.stats()),
                          handler_seconds=dict(seconds), handler_calls=dict(calls))  # fmt: skip
            runs.append(result)
            start += records
        raw = None if baseline else raw_capacity(stack.endpoint_url, args.raw_records, args.concurrency)
    return {"runs": runs, "raw": raw}


def raw_capacity(endpoint_url: str, records: int, concurrency: int, texts: list[str] | None = None,
                 prefix: str = "bench-raw") -> dict[str, Any]:  # fmt: skip
    """The same calls the pipeline makes per 100 records, straight to the emulator, no handlers.

    ``texts``: the 100 message bodies (default: 1 KB events), sent, received, deleted and written per block.
    """
    from core import aws
    from local import stack as stk

    stack = stk.create(endpoint_url, prefix)
    sqs, kinesis, ddb = aws.client("sqs"), aws.client("kinesis"), aws.client("dynamodb")
    if texts is None:
        texts = [orjson.dumps({"v": 1, "payload": workload.make_event(i)}).decode() for i in range(100)]

    def hundred(block: int) -> None:
        for i in range(0, 100, 10):
            sqs.send_message_batch(QueueUrl=stack.queue_url, Entries=[
                {"Id": str(k), "MessageBody": t} for k, t in enumerate(texts[i : i + 10])])  # fmt: skip
        kinesis.put_records(StreamName=stack.stream_name, Records=[
            {"Data": t.encode(), "PartitionKey": str(k)} for k, t in enumerate(texts)])  # fmt: skip
        got = 0
        while got < 100:
            messages = sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                break
            got += len(messages)
            sqs.delete_message_batch(QueueUrl=stack.queue_url, Entries=[
                {"Id": str(k), "ReceiptHandle": m["ReceiptHandle"]} for k, m in enumerate(messages)])  # fmt: skip
        for i in range(0, 100, 25):
            ddb.batch_write_item(RequestItems={stack.table_name: [
                {"PutRequest": {"Item": {"tenant_id": {"S": "raw"}, "event_id": {"S": f"{block:08d}-{i + k:03d}"},
                                         "body": {"S": t}}}}
                for k, t in enumerate(texts[i : i + 25])]})  # fmt: skip

    blocks = max(1, records // 100)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(hundred, range(blocks)))
    elapsed = time.perf_counter() - t0
    return {"records": blocks * 100, "seconds": elapsed, "records_per_second": blocks * 100 / elapsed}


def log_bytes_by_source(stdout: str) -> dict[str, dict[str, int]]:
    """Bytes of handler output between the markers, per run (batch) and per source.

    A Logger line names its function (``function_name``, from the injected Lambda context); an EMF
    metrics line carries ``_aws``. Anything else (a stray print) is counted as ``other``.
    """
    runs: dict[str, dict[str, int]] = {}
    current: dict[str, int] | None = None
    for line in stdout.splitlines():
        if line.startswith(MARK_START):
            current = runs.setdefault(line.split()[1], defaultdict(int))  # type: ignore[arg-type]
            continue
        if line.startswith(MARK_END):
            current = None
            continue
        if current is None or not line.strip():
            continue
        size = len(line.encode()) + 1
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            current["other"] += size
            continue
        if isinstance(doc, dict) and "_aws" in doc:
            current["metrics:" + str(doc.get("function_name", "?"))] += size
        elif isinstance(doc, dict) and "function_name" in doc:
            current["log:" + str(doc["function_name"])] += size
        else:
            current["other"] += size
    return {k: dict(v) for k, v in runs.items()}


def run_child(scenario: str, runs: list[tuple[int, int]], concurrency: int = 4, raw_records: int = 2000,
              timeout: float = 180) -> dict[str, Any]:  # fmt: skip
    """Run one scenario in a fresh interpreter; its figures plus the log bytes it wrote."""
    root = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory(prefix="sluice-bench-") as tmp:
        out = Path(tmp) / "result.json"
        command = [
            sys.executable, "-m", "loadtest.bench.e2e", scenario, "--out", str(out), "--state-dir", tmp,
            "--concurrency", str(concurrency), "--raw-records", str(raw_records), "--timeout", str(timeout),
            *[f"--run={b}x{n}" for b, n in runs],
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
        env["PYTHONPATH"] = str(root)
        proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=root, timeout=900)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"e2e {scenario} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        result: dict[str, Any] = orjson.loads(out.read_bytes())
    logs = log_bytes_by_source(proc.stdout)
    for run in result["runs"]:
        run["log_bytes"] = logs.get(str(run["batch"]), {})
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", choices=["pipeline", "baseline"])
    parser.add_argument("--out", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--raw-records", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--run", action="append", default=[], help="BATCHxRECORDS, e.g. 100x5000")
    args = parser.parse_args(argv)
    args.runs = [tuple(int(x) for x in r.split("x")) for r in args.run]
    Path(args.out).write_bytes(orjson.dumps(scenario(args)))


if __name__ == "__main__":
    main()
