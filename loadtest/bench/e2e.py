"""End to end against the emulator: records/s from POST to DynamoDB, AWS usage per record, log bytes.

Each scenario runs in its own child process (``python -m loadtest.bench.e2e SCENARIO ...``) so that
the handlers start cold with the environment the scenario sets, and so that everything they write to
stdout (Powertools Logger lines and EMF metrics: what CloudWatch Logs would ingest) is captured by the
parent between two markers and counted. The child writes its figures as JSON to ``--out``.

Scenarios:
- ``pipeline``: the real stack (``local.runtime.LocalRuntime``) at INFO with metrics on, as deployed.
- ``raw``: the emulator's own capacity for the same calls (SendMessageBatch, ReceiveMessage,
  DeleteMessageBatch, PutRecords, BatchWriteItem) in a tight loop on the same moto server, right after
  the pipeline run.
- ``baseline``: ``loadtest.bench.baseline`` behind the same local API Gateway and SQS event source.
"""

from __future__ import annotations

import argparse
import http.client
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


# ---------------------------------------------------------------- helpers used in the child


class Durations:
    """Wall time spent inside each handler, per function name (Lambda's billed duration, locally)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def wrap(self, name: str, handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def timed(event: Any, context: Any) -> Any:
            start = time.perf_counter()
            try:
                return handler(event, context)
            finally:
                with self._lock:
                    self.seconds[name] += time.perf_counter() - start
                    self.calls[name] += 1

        return timed

    def reset(self) -> None:
        with self._lock:
            self.seconds.clear()
            self.calls.clear()


def _post_all(port: int, bodies: list[bytes], concurrency: int) -> list[int]:
    """POST every body to /events with ``concurrency`` keep-alive connections; the status codes."""
    local = threading.local()

    def post(body: bytes) -> int:
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        local.conn.request("POST", "/events", body=body, headers={"content-type": "application/json"})
        response = local.conn.getresponse()
        response.read()
        return int(response.status)

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(post, bodies))


def _count_items(ddb: Any, table: str) -> int:
    total = 0
    kwargs: dict[str, Any] = {"TableName": table, "Select": "COUNT"}
    while True:
        page = ddb.scan(**kwargs)
        total += page["Count"]
        if "LastEvaluatedKey" not in page:
            return int(total)
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _wait_until(predicate: Callable[[], bool], timeout: float, every: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


def _observer() -> Any:
    """A client for the harness's own reads: not the cached one the counter watches."""
    import boto3

    return boto3.session.Session().client("dynamodb")


def _bodies(records: int, batch: int, start: int) -> list[bytes]:
    return [workload.event_body(min(batch, records - i), start + i) for i in range(0, records, batch)]


def _drive(port: int, table: str, records: int, batch: int, concurrency: int, start: int, timeout: float,
           stored_so_far: Callable[[], int]) -> dict[str, Any]:  # fmt: skip
    """Post ``records`` events in requests of ``batch`` and wait until the worker has stored them all.

    Progress is read first from the event source's counters, then from the table at a slow pace: a
    Scan every few milliseconds would load the very emulator the pipeline is using.
    """
    ddb = _observer()
    before_items = _count_items(ddb, table)
    before = stored_so_far()
    bodies = _bodies(records, batch, start)
    t0 = time.perf_counter()
    statuses = _post_all(port, bodies, concurrency)
    posted = time.perf_counter() - t0
    # The event source counts a batch when it hands it over; the table says when it is written.
    _wait_until(lambda: stored_so_far() - before >= records, timeout, every=0.05)
    _wait_until(lambda: _count_items(ddb, table) - before_items >= records, timeout, every=0.5)
    elapsed = time.perf_counter() - t0
    stored = _count_items(ddb, table) - before_items
    return {
        "records": records,
        "batch": batch,
        "requests": len(bodies),
        "accepted_requests": sum(1 for s in statuses if s == 202),
        "statuses": sorted(set(statuses)),
        "stored": stored,
        "all_stored": stored >= records,
        "post_seconds": posted,
        "seconds": elapsed,
        "records_per_second": records / elapsed,
    }


def _stored(stats: Any) -> Callable[[], int]:
    def count() -> int:
        snap = stats.snapshot()
        return int(snap["records"] - snap["failed_records"])

    return count


def _attach(counter: Any) -> None:
    from core import aws

    for service in SERVICES:
        counter.attach(aws.client(service))


def _start_http(app: Any, port: int) -> Any:
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]
    threading.Thread(target=server.run, daemon=True).start()
    _wait_until(lambda: bool(server.started), 15, 0.05)
    return server


# ---------------------------------------------------------------- scenarios (in the child)


def scenario_pipeline(args: argparse.Namespace) -> dict[str, Any]:
    from loadtest.bench.counter import AwsCallCounter
    from local import runtime as rt_mod
    from local.emulator import free_port

    durations = Durations()
    names = {"ingest.handler": "ingest", "consumers.worker.handler": "worker"}

    class TimedPool(rt_mod.ContainerPool):  # type: ignore[misc,name-defined]
        """The runtime's pool of execution environments, timing every invocation."""

        def __call__(self, event: Any, context: Any) -> Any:
            name = names.get(self.dotted.rpartition(".")[0], "consumers")
            return durations.wrap(name, super().__call__)(event, context)

    rt_mod.ContainerPool = TimedPool  # type: ignore[attr-defined,misc]
    options = rt_mod.RuntimeOptions(
        port=free_port(), emulator_port=free_port(), prefix="bench", state_dir=Path(args.state_dir),
        extra_env={"POWERTOOLS_LOG_LEVEL": "INFO", "POWERTOOLS_METRICS_DISABLED": "false",
                   "POWERTOOLS_SERVICE_NAME": "sluice", "POWERTOOLS_METRICS_NAMESPACE": "sluice"},
    )  # fmt: skip
    counter = AwsCallCounter()
    result: dict[str, Any] = {}
    with rt_mod.LocalRuntime(options) as runtime:
        assert runtime.stack is not None
        table = runtime.stack.table_name
        assert runtime.worker is not None
        stored = _stored(runtime.worker.stats)
        _drive(options.port, table, 10, 10, 1, 10**6, 60, stored)  # warm: imports, clients, connections
        _wait_until(lambda: _consumers_done(runtime, 10), 30)
        _attach(counter)
        runs = []
        start = 0
        for batch, records in args.runs:
            counter.reset()
            durations.reset()
            stats_before = runtime.stats()
            print(f"{MARK_START} {batch}", flush=True)
            run = _drive(options.port, table, records, batch, args.concurrency, start, args.timeout, stored)
            base = _consumer_records(stats_before)
            _wait_until(lambda r=records, b=base: _consumers_done(runtime, r + b), 60)  # type: ignore[misc]
            print(f"{MARK_END} {batch}", flush=True)
            run["aws"] = counter.snapshot()
            run["item_bytes"] = dict(counter.item_bytes)
            run["invocations"] = _stats_delta(stats_before, runtime.stats())
            run["handler_seconds"] = dict(durations.seconds)
            run["handler_calls"] = dict(durations.calls)
            runs.append(run)
            start += records
        result["runs"] = runs
        result["raw"] = _raw_capacity(runtime.stack.endpoint_url, args.raw_records, args.concurrency)
    return result


def _consumer_records(stats: dict[str, Any]) -> int:
    consumers = [v["records"] for k, v in stats.items() if k.startswith("consumer:")]
    return min(consumers) if consumers else 0


def _consumers_done(runtime: Any, records: int) -> bool:
    return _consumer_records(runtime.stats()) >= records


def _stats_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"http_requests": after["http_requests"] - before["http_requests"]}
    for key, value in after.items():
        if isinstance(value, dict):
            out[key] = {k: v - before.get(key, {}).get(k, 0) for k, v in value.items()}
    return out


def _raw_capacity(endpoint_url: str, records: int, concurrency: int) -> dict[str, Any]:
    """The same calls the pipeline makes per 100 records, straight to the emulator, no handlers."""
    from core import aws
    from local import stack as stk

    stack = stk.create(endpoint_url, "bench-raw")
    sqs, kinesis, ddb = aws.client("sqs"), aws.client("kinesis"), aws.client("dynamodb")
    texts = [orjson.dumps({"v": 1, "payload": workload.make_event(i)}).decode() for i in range(100)]

    def hundred(block: int) -> None:
        for i in range(0, 100, 10):
            sqs.send_message_batch(
                QueueUrl=stack.queue_url,
                Entries=[{"Id": str(k), "MessageBody": t} for k, t in enumerate(texts[i : i + 10])],
            )
        kinesis.put_records(
            StreamName=stack.stream_name,
            Records=[{"Data": t.encode(), "PartitionKey": str(k)} for k, t in enumerate(texts)],
        )
        got = 0
        while got < 100:
            messages = sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                break
            got += len(messages)
            sqs.delete_message_batch(
                QueueUrl=stack.queue_url,
                Entries=[{"Id": str(k), "ReceiptHandle": m["ReceiptHandle"]} for k, m in enumerate(messages)],
            )
        for i in range(0, 100, 25):
            ddb.batch_write_item(
                RequestItems={
                    stack.table_name: [
                        {"PutRequest": {"Item": {
                            "tenant_id": {"S": "raw"}, "event_id": {"S": f"{block:08d}-{i + k:03d}"},
                            "body": {"S": t},
                        }}}
                        for k, t in enumerate(texts[i : i + 25])
                    ]
                }
            )  # fmt: skip

    blocks = max(1, records // 100)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(hundred, range(blocks)))
    elapsed = time.perf_counter() - t0
    return {"records": blocks * 100, "seconds": elapsed, "records_per_second": blocks * 100 / elapsed}


def scenario_baseline(args: argparse.Namespace) -> dict[str, Any]:
    from core import aws, wiring
    from loadtest.bench import baseline
    from loadtest.bench.counter import AwsCallCounter
    from local import emulator as emu
    from local import stack as stk
    from local.http import LocalApiGateway
    from local.sources import SqsEventSource

    stk.use_fake_credentials()
    emulator = emu.start(emu.free_port(), log_path=Path(args.state_dir) / "baseline-emulator.log")
    os.environ["AWS_ENDPOINT_URL"] = emulator.url
    aws.client.cache_clear()
    durations = Durations()
    try:
        stack = stk.create(emulator.url, "bench-baseline")
        os.environ.update(BASELINE_QUEUE_URL=stack.queue_url, BASELINE_STREAM_NAME=stack.stream_name,
                          BASELINE_TABLE_NAME=stack.table_name)  # fmt: skip
        source = SqsEventSource(stack.queue_url, stack.queue_arn,
                                durations.wrap("worker", baseline.worker_handler), wiring.load().worker)  # fmt: skip
        gateway = LocalApiGateway(durations.wrap("ingest", baseline.ingest_handler))
        port = emu.free_port()
        server = _start_http(gateway, port)
        source.start()
        try:
            stored = _stored(source.stats)
            _drive(port, stack.table_name, 10, 10, 1, 10**6, 60, stored)
            counter = AwsCallCounter()
            _attach(counter)
            runs = []
            start = 0
            for batch, records in args.runs:
                counter.reset()
                durations.reset()
                before = {"http_requests": gateway.requests, "worker": source.stats.snapshot()}
                print(f"{MARK_START} {batch}", flush=True)
                run = _drive(
                    port, stack.table_name, records, batch, args.concurrency, start, args.timeout, stored
                )
                print(f"{MARK_END} {batch}", flush=True)
                after = {"http_requests": gateway.requests, "worker": source.stats.snapshot()}
                run["aws"] = counter.snapshot()
                run["item_bytes"] = dict(counter.item_bytes)
                run["invocations"] = _stats_delta(before, after)
                run["handler_seconds"] = dict(durations.seconds)
                run["handler_calls"] = dict(durations.calls)
                runs.append(run)
                start += records
            return {"runs": runs}
        finally:
            server.should_exit = True
            source.stop()
    finally:
        emulator.stop()


# ---------------------------------------------------------------- the parent side


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
    result = scenario_pipeline(args) if args.scenario == "pipeline" else scenario_baseline(args)
    Path(args.out).write_bytes(orjson.dumps(result))


if __name__ == "__main__":
    main()
