"""Helpers for tests against the real local stack: start it, post to it, read what landed.

The test's own reads go straight to the emulator (never through a chaos proxy) with patient clients:
a full scan of a busy emulator may take longer than the handlers' 5 s read timeout.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
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

import boto3
import orjson
from botocore.config import Config

from core import aws
from local import emulator
from local.runtime import LocalRuntime, RuntimeOptions
from local.stack import Stack


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


class Direct:
    """Patient boto3 clients for the emulator itself, bypassing any proxy."""

    def __init__(self, runtime: LocalRuntime) -> None:
        assert runtime.emulator is not None and runtime.stack is not None
        self.url = runtime.emulator.url
        self.stack: Stack = runtime.stack
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service, endpoint_url=self.url, region_name=self.stack.region,
                config=Config(read_timeout=120, retries={"mode": "standard", "max_attempts": 5}),
            )  # fmt: skip
        return self._clients[service]

    def scan(self, table: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": table}
        while True:
            page = self.client("dynamodb").scan(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def stored_keys(self) -> list[tuple[str, str]]:
        return [(i["tenant_id"]["S"], i["event_id"]["S"]) for i in self.scan(self.stack.table_name)]

    def stream_envelopes(self) -> list[dict[str, Any]]:
        kinesis, out = self.client("kinesis"), []
        for shard in kinesis.list_shards(StreamName=self.stack.stream_name)["Shards"]:
            iterator = kinesis.get_shard_iterator(StreamName=self.stack.stream_name, ShardId=shard["ShardId"],
                                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]  # fmt: skip
            while iterator:
                page = kinesis.get_records(ShardIterator=iterator, Limit=10000)
                out.extend(orjson.loads(r["Data"]) for r in page["Records"])
                if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                    break
                iterator = page.get("NextShardIterator")
        return out

    def stream_ids(self) -> list[str]:
        return [e["event_id"] for e in self.stream_envelopes()]

    def depth(self, url: str) -> int:
        attrs = self.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def archived(self) -> Counter[str]:
        """event_id -> how many archive objects hold it."""
        s3, seen = self.client("s3"), Counter[str]()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.stack.archive_bucket):
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=self.stack.archive_bucket, Key=obj["Key"])["Body"].read()
                for line in gzip.decompress(body).splitlines():
                    seen[orjson.loads(line)["event_id"]] += 1
        return seen

    def rollup_counts(self) -> Counter[str]:
        """tenant -> records counted by the rollup (the checkpoint rows excluded)."""
        counts = Counter[str]()
        for item in self.scan(self.stack.rollup_table_name):
            if not item["tenant_id"]["S"].startswith("#"):
                counts[item["tenant_id"]["S"]] += int(item["record_count"]["N"])
        return counts


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


REPO = Path(__file__).resolve().parent.parent


@contextmanager
def server_process(state: Path, *run_args: str) -> Iterator[tuple[int, subprocess.Popen[bytes], Path]]:
    """``python -m local run`` as its own process on free ports: (API port, process, its log file).

    Everything the process writes (handler logs, uvicorn, the runtime) goes to the log file.
    """
    import signal

    state.mkdir(parents=True, exist_ok=True)
    port, emulator_port = emulator.free_port(), emulator.free_port()
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    env["PYTHONPATH"] = str(REPO)
    log = state / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "local", "--state-dir", str(state / "state"), "run", "--port", str(port),
             "--emulator-port", str(emulator_port), *run_args],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def up() -> bool:
        if process.poll() is not None:
            return True
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return True
        except OSError:
            return False

    try:
        wait_for(up, timeout=90, interval=0.5)
        assert process.poll() is None, log.read_text()[-2000:]
        yield port, process, log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
