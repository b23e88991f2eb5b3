"""The botocore hook counter, on real clients whose HTTP layer is stubbed (no sockets)."""

from __future__ import annotations

import boto3
from botocore.stub import Stubber

from loadtest.bench.counter import AwsCallCounter
from loadtest.bench.e2e import log_bytes_by_source


def _client(service: str):  # type: ignore[no-untyped-def]
    return boto3.session.Session().client(service, region_name="us-east-1")


def test_counts_sqs_calls_records_and_64kb_requests() -> None:
    # GIVEN an SQS client with the counter attached, and stubbed answers
    sqs = _client("sqs")
    counter = AwsCallCounter()
    counter.attach(sqs)
    url = "https://sqs.us-east-1.amazonaws.com/000000000000/q"
    entries = [{"Id": str(i), "MessageBody": "x" * (20 * 1024)} for i in range(4)]  # 80 KiB: two chunks
    with Stubber(sqs) as stub:
        stub.add_response("send_message_batch", {"Successful": [], "Failed": []})
        stub.add_response(
            "receive_message", {"Messages": [{"MessageId": "m", "ReceiptHandle": "r", "Body": "b"}]}
        )
        stub.add_response("receive_message", {})
        # WHEN the code sends a batch and receives twice (once empty)
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
        sqs.receive_message(QueueUrl=url)
        sqs.receive_message(QueueUrl=url)
    # THEN calls, records and billed requests are counted per operation
    snap = counter.snapshot()
    assert snap["sqs.SendMessageBatch"]["calls"] == 1
    assert snap["sqs.SendMessageBatch"]["records"] == 4
    assert snap["sqs.SendMessageBatch"]["units"] == 2
    assert snap["sqs.ReceiveMessage"] == {
        "calls": 2,
        "request_bytes": 0,
        "units": 2,
        "records": 1,
        "empty": 1,
    }


def test_counts_kinesis_payload_units_and_dynamodb_wru() -> None:
    kinesis, ddb = _client("kinesis"), _client("dynamodb")
    counter = AwsCallCounter()
    counter.attach(kinesis)
    counter.attach(ddb)
    big = {"tenant_id": {"S": "t"}, "event_id": {"S": "e"}, "body": {"S": "y" * 1500}}  # 2 WRU
    small = {"tenant_id": {"S": "t"}, "event_id": {"S": "f"}}  # 1 WRU
    with Stubber(kinesis) as ks, Stubber(ddb) as ds:
        ks.add_response("put_records", {"Records": [{"SequenceNumber": "1", "ShardId": "s"}] * 2})
        ds.add_response("batch_write_item", {"UnprocessedItems": {}})
        kinesis.put_records(
            StreamName="s",
            Records=[{"Data": b"a" * (30 * 1024), "PartitionKey": "k"}, {"Data": b"b", "PartitionKey": "k"}],
        )
        ddb.batch_write_item(
            RequestItems={"t": [{"PutRequest": {"Item": big}}, {"PutRequest": {"Item": small}}]}
        )
    snap = counter.snapshot()
    assert snap["kinesis.PutRecords"]["units"] == 3  # 30 KiB -> 2 units, 1 byte -> 1 unit
    assert snap["dynamodb.BatchWriteItem"]["units"] == 3
    assert snap["dynamodb.BatchWriteItem"]["records"] == 2
    assert counter.item_bytes["t"] == (8 + 9 + 1 + 1 + 4 + 1500) + (9 + 1 + 8 + 1)


def test_reset_and_detach_stop_counting() -> None:
    sqs = _client("sqs")
    counter = AwsCallCounter()
    counter.attach(sqs)
    with Stubber(sqs) as stub:
        stub.add_response("delete_message_batch", {"Successful": [], "Failed": []})
        stub.add_response("delete_message_batch", {"Successful": [], "Failed": []})
        sqs.delete_message_batch(QueueUrl="https://q", Entries=[{"Id": "0", "ReceiptHandle": "r"}])
        counter.reset()
        assert counter.snapshot() == {}
        counter.detach(sqs)
        sqs.delete_message_batch(QueueUrl="https://q", Entries=[{"Id": "0", "ReceiptHandle": "r"}])
    assert counter.snapshot() == {}


def test_log_bytes_are_counted_between_markers_per_source() -> None:
    stdout = "\n".join(
        [
            '{"level":"INFO","function_name":"ingest","message":"before"}',  # outside: ignored
            "@@bench-start@@ 100",
            '{"level":"INFO","function_name":"ingest","message":"request ingested"}',
            '{"_aws":{"Timestamp":1},"RecordsAccepted":[100]}',
            "plain text",
            "@@bench-end@@ 100",
        ]
    )
    logs = log_bytes_by_source(stdout)
    assert logs == {
        "100": {
            "log:ingest": len('{"level":"INFO","function_name":"ingest","message":"request ingested"}') + 1,
            "metrics:?": len('{"_aws":{"Timestamp":1},"RecordsAccepted":[100]}') + 1,
            "other": len("plain text") + 1,
        }
    }
