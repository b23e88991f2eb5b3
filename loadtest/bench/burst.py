"""A burst at depth: 20,000 mixed records posted as fast as 4 keep-alive clients can, then drained.

The child (``python -m loadtest.bench.burst --out FILE --state-dir DIR``) runs ``local.runtime.LocalRuntime``
as ``make run`` does (handler logs at WARNING, metrics off) and loads it with the load driver's direct
posting (``loadtest.run``): 80% short log lines (text bodies to ``/ingest``) and 20% JSON events of
1-8 KB (arrays to ``/events``), interleaved request by request. It reports the accept rate, the drain
time after the last reply, end-to-end records/s (all records over the time until the last is in
DynamoDB), the lag of one sampled record per request, the peak RSS of the stack (this process and the
emulator's), and then the emulator's raw capacity for the same calls on the same emulator
(``raw_capacity``).

The raw capacity is the emulator serving, from as many client threads as the burst has clients and
with no handler in the way, every call the pipeline makes for the same records with the same
payloads: the burst's own envelopes (read back from its stream) sent with their tenant as the message
group, received with all attributes and deleted in tens, put on the stream, written as the items the
worker builds from them, and read by two stream readers that make the archiver's and the rollup's
calls (GetRecords of up to 500, an S3 object per batch; a checkpoint read and a transaction per
batch). ``e2e.raw_capacity``'s simpler loop (short bodies, no message group, no attributes, one
string attribute per item, no stream readers) is reported beside it as ``raw_simple``.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from loadtest.bench import e2e, workload

RECORDS = 20_000
CLIENTS = 4
LOG_SHARE = 0.8
LINES_PER_REQUEST = 400
EVENTS_PER_REQUEST = 100
EVENT_BYTES = (1024, 8 * 1024)


def event_sizes(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(EVENT_BYTES[0], EVENT_BYTES[1] + 1) for _ in range(n)]


def bodies(records: int = RECORDS) -> list[Any]:
    """The burst's requests: log-line bodies and event bodies interleaved, ``records`` records in all."""
    from loadtest.run import PostBody

    logs, events = round(records * LOG_SHARE), records - round(records * LOG_SHARE)
    log_bodies = [
        PostBody(workload.log_body(min(LINES_PER_REQUEST, logs - i), i), "/ingest", "text/plain")
        for i in range(0, logs, LINES_PER_REQUEST)
    ]
    sizes = event_sizes(events)
    event_bodies = [
        PostBody(orjson.dumps([workload.make_event(10**7 + i + k, size)
                               for k, size in enumerate(sizes[i : i + EVENTS_PER_REQUEST])]))
        for i in range(0, events, EVENTS_PER_REQUEST)
    ]  # fmt: skip
    out: list[Any] = []
    for i in range(max(len(log_bodies), len(event_bodies))):
        out += log_bodies[i : i + 1] + event_bodies[i : i + 1]
    return out


def raw_texts(n: int = 100) -> list[str]:
    """Message bodies for the raw-capacity loop in the burst's proportions: lines and 1-8 KB events."""
    sizes = event_sizes(n, seed=1)
    return [
        orjson.dumps({"v": 1, "text": workload.log_line(i)}).decode()
        if i % 5 else orjson.dumps({"v": 1, "payload": workload.make_event(i, sizes[i])}).decode()
        for i in range(n)
    ]  # fmt: skip


def burst_envelopes(
    endpoint_url: str, stream_name: str, n: int = 100, seed: int = 2
) -> list[tuple[str, str]]:
    """``n`` of the burst's own envelopes in its proportions, as (partition key, body), from its stream."""
    from core import aws

    kinesis = aws.client("kinesis")
    shard = kinesis.list_shards(StreamName=stream_name)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=stream_name, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]  # fmt: skip
    logs: list[tuple[str, str]] = []
    events: list[tuple[str, str]] = []
    while iterator:
        page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
        for r in page["Records"]:
            body = r["Data"].decode()
            (logs if orjson.loads(body).get("kind") == "log" else events).append((r["PartitionKey"], body))
        if not page["Records"]:
            break
        iterator = page.get("NextShardIterator")
    rng = random.Random(seed)
    want_logs = round(n * LOG_SHARE)
    picked = rng.sample(logs, min(want_logs, len(logs))) + rng.sample(events, min(n - want_logs, len(events)))
    rng.shuffle(picked)
    return picked


def raw_capacity(endpoint_url: str, envelopes: list[tuple[str, str]], records: int, clients: int,
                 prefix: str = "bench-burst-raw") -> dict[str, Any]:  # fmt: skip
    """The emulator alone serving the pipeline's calls for ``records`` records, with no handler.

    ``envelopes``: 100 (partition key, body) pairs, sent, received, deleted, streamed and written per
    block of 100, from ``clients`` threads; two stream readers make the archiver's and the rollup's
    calls over everything put, and the clock stops when both have read it all.
    """
    from consumers.worker.items import prepare_record
    from consumers.worker.store import serialize_item
    from core import aws, redaction
    from core.envelope import now_received_at
    from core.settings import WorkerSettings
    from local import stack as stk

    stack = stk.create(endpoint_url, prefix)
    sqs, kinesis, ddb, s3 = aws.client("sqs"), aws.client("kinesis"), aws.client("dynamodb"), aws.client("s3")
    settings = WorkerSettings.from_env()
    redactor = redaction.load(settings.redaction_rules_path, settings.redact_ip_addresses)
    items = [serialize_item(prepare_record(body, redactor, retention_days=settings.retention_days,
                                           stored_at=now_received_at(), compact=settings.store_compact).item)
             for _, body in envelopes]  # fmt: skip
    groups = [orjson.loads(body)["tenant_id"] for _, body in envelopes]
    blocks = max(1, records // len(envelopes))
    total = blocks * len(envelopes)

    def block(n: int) -> None:
        for i in range(0, len(envelopes), 10):
            sqs.send_message_batch(QueueUrl=stack.queue_url, Entries=[
                {"Id": str(k), "MessageBody": body, "MessageGroupId": groups[i + k]}
                for k, (_, body) in enumerate(envelopes[i : i + 10])])  # fmt: skip
        kinesis.put_records(StreamName=stack.stream_name, Records=[
            {"Data": body.encode(), "PartitionKey": key} for key, body in envelopes])  # fmt: skip
        got = 0
        while got < len(envelopes):
            messages = sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10,
                                           AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])  # fmt: skip
            if not messages:
                break
            got += len(messages)
            sqs.delete_message_batch(QueueUrl=stack.queue_url, Entries=[
                {"Id": str(k), "ReceiptHandle": m["ReceiptHandle"]} for k, m in enumerate(messages)])  # fmt: skip
        for i in range(0, len(items), 25):
            ddb.batch_write_item(RequestItems={stack.table_name: [
                {"PutRequest": {"Item": {**item, "event_id": {"S": f"{item['event_id']['S']}-{n}"}}}}
                for item in items[i : i + 25]]})  # fmt: skip

    def commit(name: str, batch: int, records: list[dict[str, Any]], shard: str) -> None:
        if name == "archiver":
            s3.put_object(Bucket=stack.archive_bucket, Key=f"raw/{batch:06d}.ndjson.gz",
                          Body=gzip.compress(b"\n".join(r["Data"] for r in records), 1))  # fmt: skip
            return
        key = {"tenant_id": {"S": "__checkpoint__"}, "bucket": {"S": shard}}
        ddb.get_item(TableName=stack.rollup_table_name, Key=key, ConsistentRead=True)
        ddb.transact_write_items(TransactItems=[
            {"Update": {"TableName": stack.rollup_table_name, "Key": key, "UpdateExpression": "SET #s = :s",
                        "ExpressionAttributeNames": {"#s": "sequence"},
                        "ExpressionAttributeValues": {":s": {"S": records[-1]["SequenceNumber"]}}}},
            *({"Update": {"TableName": stack.rollup_table_name,
                          "Key": {"tenant_id": {"S": tenant}, "bucket": {"S": f"raw#{batch}"}},
                          "UpdateExpression": "ADD #c :c", "ExpressionAttributeNames": {"#c": "records"},
                          "ExpressionAttributeValues": {":c": {"N": "1"}}}} for tenant in set(groups)),
        ])  # fmt: skip

    def stream_reader(name: str, sent: threading.Event) -> int:
        # As the pipeline's stream pollers: up to 500 a batch, a poll every 0.25 s while the shard is
        # caught up (none once every block is sent, so the clock stops when the last record is read).
        shard = kinesis.list_shards(StreamName=stack.stream_name)["Shards"][0]["ShardId"]
        iterator = kinesis.get_shard_iterator(StreamName=stack.stream_name, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]  # fmt: skip
        seen = batches = 0
        buffer: list[dict[str, Any]] = []
        window_ends = 0.0
        while seen < total:
            page = kinesis.get_records(ShardIterator=iterator, Limit=500 - len(buffer))
            iterator = page["NextShardIterator"]
            if page["Records"] and not buffer:
                window_ends = time.monotonic() + 5
            buffer += page["Records"]
            if buffer and (
                len(buffer) >= 500 or seen + len(buffer) >= total or time.monotonic() >= window_ends
            ):
                batches += 1
                commit(name, batches, buffer, shard)
                seen, buffer = seen + len(buffer), []
            elif not page["Records"]:
                sent.wait(0.25)
        return seen

    sent = threading.Event()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(2) as readers:
        read = [readers.submit(stream_reader, name, sent) for name in ("archiver", "rollup")]
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(block, range(blocks)))
        sent.set()
        assert all(f.result() >= total for f in read)
    elapsed = time.perf_counter() - t0
    return {"records": total, "seconds": elapsed, "records_per_second": total / elapsed}


class RssSampler(threading.Thread):
    """Peak resident memory of this process plus its children (the emulator), sampled every 0.25 s."""

    def __init__(self) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.peak = 0
        self.peak_children = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop_event.wait(0.25):
            try:
                children = sum(c.memory_info().rss for c in me.children(recursive=True))
                total = me.memory_info().rss + children
            except psutil.Error:
                continue
            self.peak = max(self.peak, total)
            self.peak_children = max(self.peak_children, children)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


def burst(args: argparse.Namespace) -> dict[str, Any]:
    """The burst against a fresh in-process stack, then the raw capacity on its emulator; in the child."""
    from loadtest import run
    from local import runtime as rt
    from local.emulator import free_port

    options = rt.RuntimeOptions(port=free_port(), emulator_port=free_port(), prefix="bench-burst",
                                state_dir=Path(args.state_dir), visibility_timeout=45)  # fmt: skip
    requests = bodies(args.records)
    rss = RssSampler()
    with rt.LocalRuntime(options) as runtime:
        stack = runtime.stack
        assert stack is not None
        rss.start()

        def worker_done() -> int:
            w = runtime.stats()["worker"]
            return int(w["completed_records"])

        try:
            s = run.execute(run.RunOptions(
                host=runtime.api_url, table=stack.table_name, queue_url=stack.queue_url,
                endpoint_url=stack.endpoint_url, region=stack.region, post=requests,
                post_concurrency=args.clients, drain_timeout=args.timeout, sample_every=1,
                stored_hint=lambda: worker_done() >= args.records,
                out=Path(args.state_dir) / "run", quiet=True,
            )).summary  # fmt: skip
        finally:
            rss.stop()
        stored_after = s.get("stored_after_s") or float("nan")
        result = {
            "records": args.records, "requests": len(requests), "clients": args.clients,
            "accepted": s["records_accepted"], "stored": s.get("records_stored"), "all_stored": s.get("all_stored"),
            "accept_seconds": s["load_seconds"], "accepted_per_second": s["accepted_per_second"],
            "drain_seconds": round(stored_after - s["load_seconds"], 1), "stored_after_s": round(stored_after, 1),
            "records_per_second": s["records_accepted"] / stored_after,
            "lag_p50_s": s.get("lag_p50_s"), "lag_p95_s": s.get("lag_p95_s"), "peak_backlog": s.get("peak_backlog"),
            "peak_rss_mb": round(rss.peak / 2**20),
            "peak_rss_emulator_mb": round(rss.peak_children / 2**20), "worker": runtime.stats()["worker"],
            "failures": s["failures"],
        }  # fmt: skip
        envelopes = burst_envelopes(stack.endpoint_url, stack.stream_name)
        result["raw"] = raw_capacity(stack.endpoint_url, envelopes, args.raw_records, args.clients)
        result["raw_simple"] = e2e.raw_capacity(
            stack.endpoint_url, args.raw_records, args.clients, raw_texts()
        )
    result["share_of_raw"] = result["records_per_second"] / result["raw"]["records_per_second"]
    result["load_average"] = os.getloadavg()
    return result


def rows(result: dict[str, Any]) -> list[list[Any]]:
    """The burst's figures as (measure, value) rows for the printed report."""
    raw = result["raw"]
    return [
        ["accepted records / s", result["accepted_per_second"]],
        ["accepting took (s)", result["accept_seconds"]],
        ["drain after the last reply (s)", result["drain_seconds"]],
        ["end-to-end records / s (POST -> DynamoDB)", round(result["records_per_second"], 1)],
        ["emulator raw capacity, same calls, records / s", round(raw["records_per_second"], 1)],
        ["end to end x raw capacity", round(result["share_of_raw"], 3)],
        *([["simpler raw loop (e2e.raw_capacity), records / s; end to end x it",
            f"{result['raw_simple']['records_per_second']:.1f}; "
            f"{result['records_per_second'] / result['raw_simple']['records_per_second']:.3f}"]]
          if result.get("raw_simple") else []),
        ["lag p50 / p95 (s)", f"{result['lag_p50_s']} / {result['lag_p95_s']}"],
        ["peak queue backlog", result["peak_backlog"]],
        ["peak RSS of the stack (MB; of which the emulator)",
         f"{result['peak_rss_mb']} ({result.get('peak_rss_emulator_mb', '?')})"],
        ["records stored / accepted", f"{result['stored']} / {result['accepted']}"],
        ["load average before / after", "{:.2f} / {:.2f}".format(result["load_average_before"][0],
                                                                 result["load_average"][0])],
    ]  # fmt: skip


def run_child(records: int = RECORDS, clients: int = CLIENTS, raw_records: int = 4000,
              timeout: float = 600) -> dict[str, Any]:  # fmt: skip
    """The burst in a fresh interpreter; its figures."""
    root = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory(prefix="sluice-burst-") as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "loadtest.bench.burst", "--out", str(out), "--state-dir", tmp,
                   "--records", str(records), "--clients", str(clients), "--raw-records", str(raw_records),
                   "--timeout", str(timeout)]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
        env["PYTHONPATH"] = str(root)
        load = os.getloadavg()
        proc = subprocess.run(
            command, capture_output=True, text=True, env=env, cwd=root, timeout=timeout + 300
        )
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"burst failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        result: dict[str, Any] = orjson.loads(out.read_bytes())
    result["load_average_before"] = load
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--records", type=int, default=RECORDS)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--raw-records", type=int, default=4000)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)
    result = burst(args)
    Path(args.out).write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
