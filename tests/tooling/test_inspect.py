"""local/inspect.py against moto: every view the CLI, the load tests and the tests read a stack through."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import boto3
import orjson
import pytest
from moto import mock_aws

from local import stack as stk
from local.inspect import StackInspector
from tests.conftest import REGION


@pytest.fixture
def inspector() -> Iterator[tuple[StackInspector, stk.Stack]]:
    with mock_aws():
        stack = stk.create("http://emulator.invalid", "inspect", visibility_timeout=30)
        clients = {s: boto3.client(s, region_name=REGION) for s in ("sqs", "dynamodb", "kinesis", "s3")}
        yield StackInspector(stack.queue_url, stack.dlq_url, stack.table_name, region=REGION,
                             sqs=clients["sqs"], dynamodb=clients["dynamodb"], kinesis=clients["kinesis"],
                             s3=clients["s3"], stream_name=stack.stream_name,
                             stream_failures_url=stack.stream_failures_url,
                             rollup_table_name=stack.rollup_table_name,
                             archive_bucket=stack.archive_bucket), stack  # fmt: skip


def test_depths_stats_and_dead_letters(inspector: tuple[StackInspector, stk.Stack]) -> None:
    probe, stack = inspector
    sqs = probe.client("sqs")
    # GIVEN two messages on the queue (one of them in flight), one dead letter and one stored item
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)
    sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=1)
    envelope = {"tenant_id": "acme", "event_id": "e1", "kind": "event"}
    sqs.send_message(QueueUrl=stack.dlq_url, MessageBody=orjson.dumps(envelope).decode())
    probe.client("dynamodb").put_item(
        TableName=stack.table_name, Item={"tenant_id": {"S": "acme"}, "event_id": {"S": "e1"}}
    )
    # THEN every view agrees
    assert probe.depth(stack.queue_url) == 2
    backlog = probe.backlog()
    assert (backlog.visible, backlog.in_flight, backlog.dlq, backlog.total) == (1, 1, 1, 2)
    assert probe.stats() == {"queue_depth": 2, "dlq_depth": 1, "stream_failures_depth": 0, "stored_items": 1}
    letters = probe.dead_letters()
    assert [(d.tenant_id, d.event_id, d.kind) for d in letters] == [("acme", "e1", "event")]
    assert probe.depth(stack.dlq_url) == 1  # peeking leaves the letter where it was
    assert probe.stored_keys() == [("acme", "e1")]
    assert probe.count_stored("acme") == 1 and probe.count_stored("globex") == 0
    assert len(probe.stored_items()) == 1


def test_stream_archive_and_rollup(inspector: tuple[StackInspector, stk.Stack]) -> None:
    probe, stack = inspector
    # GIVEN two envelopes on the stream, an archive object holding one of them twice, and rollup rows
    for eid in ("e1", "e2"):
        probe.client("kinesis").put_record(
            StreamName=stack.stream_name, Data=orjson.dumps({"event_id": eid}), PartitionKey=eid
        )
    lines = b"\n".join(orjson.dumps({"event_id": e}) for e in ("e1", "e1"))
    probe.client("s3").put_object(
        Bucket=stack.archive_bucket, Key="acme/x.jsonl.gz", Body=gzip.compress(lines)
    )
    for tenant, bucket, count in (("acme", "h1", 3), ("acme", "h2", 2), ("#checkpoint", "s", 9)):
        probe.client("dynamodb").put_item(TableName=stack.rollup_table_name, Item={
            "tenant_id": {"S": tenant}, "bucket": {"S": bucket}, "record_count": {"N": str(count)}})  # fmt: skip
    # THEN the views read them back
    assert sorted(probe.stream_ids()) == ["e1", "e2"]
    assert probe.archived() == {"e1": 2}
    assert probe.rollup_counts() == {"acme": 5}


def test_stored_records_unpack_every_storage_form(inspector: tuple[StackInspector, stk.Stack]) -> None:
    from consumers.worker.items import prepare_record
    from consumers.worker.store import serialize_item
    from core import envelope, redaction

    probe, stack = inspector
    # GIVEN three items the worker built, one per storage form (native, json, gzip)
    base = {"v": 1, "tenant_id": "acme", "received_at": envelope.now_received_at(),
            "source": {"route": "POST /events"}, "kind": "event"}  # fmt: skip
    payloads = {
        "0193a6b1-0000-7000-8000-000000000001": {"user": "ada", "n": 1},
        "0193a6b1-0000-7000-8000-000000000002": {"deep": _nested(40)},
        "0193a6b1-0000-7000-8000-000000000003": {"blob": "x" * 2000},
    }
    forms = set()
    for event_id, payload in payloads.items():
        body = envelope.dumps({**base, "event_id": event_id, "payload": payload})
        prepared = prepare_record(body, redaction.load(), retention_days=1, stored_at=base["received_at"],
                                  compact=True)  # fmt: skip
        forms.add(prepared.storage)
        probe.client("dynamodb").put_item(TableName=stack.table_name, Item=serialize_item(prepared.item))
    assert forms == {"native", "json", "gzip"}
    # THEN the inspector reads each back as the payload that was sent
    got = {r["event_id"]: r["payload"] for r in probe.stored_records()}
    assert got == payloads


def _nested(levels: int) -> object:
    value: object = "leaf"
    for _ in range(levels):
        value = {"a": value}
    return value
