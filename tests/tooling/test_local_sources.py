"""The local event sources against moto in server mode: the Lambda event-source-mapping semantics
the worker and the stream consumers rely on (partial batch responses, redelivery, DLQ, checkpoints,
bisection, on-failure destination)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import orjson
import pytest

from core import aws, wiring
from local import emulator
from local.inspect import StackInspector
from local.sources import KinesisEventSource, SqsEventSource

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    emu = emulator.start(emulator.free_port())
    try:
        yield emu.url
    finally:
        emu.stop()


@pytest.fixture
def endpoint(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    aws.client.cache_clear()
    yield moto_url
    aws.client.cache_clear()


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def make_queue(name: str, max_receive: int = 2, visibility: int = 2) -> tuple[str, str, str]:
    sqs = aws.client("sqs")
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": str(visibility),
        "RedrivePolicy": orjson.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive}).decode(),
    })["QueueUrl"]  # fmt: skip
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn, dlq


def depth(url: str) -> int:
    return StackInspector(sqs=aws.client("sqs")).depth(url)


def test_sqs_only_reported_failures_come_back_and_poison_reaches_the_dlq(endpoint: str) -> None:
    # GIVEN a worker that reports message "poison" as failed every time and succeeds on the others
    url, arn, dlq = make_queue("sources-partial")
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def handler(event: dict[str, Any], _: Any) -> dict[str, Any]:
        failures = []
        with lock:
            for record in event["Records"]:
                seen[record["body"]] += 1
                if record["body"] == "poison":
                    failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    cfg = replace(
        wiring.load().worker, batch_size=10, maximum_batching_window_seconds=0, maximum_concurrency=2
    )
    source = SqsEventSource(url, arn, handler, cfg)
    sqs = aws.client("sqs")
    for body in ["a", "b", "poison", "c"]:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    # WHEN the source runs
    source.start()
    try:
        wait_for(lambda: depth(dlq) == 1)
        wait_for(lambda: depth(url) == 0)
    finally:
        source.stop()
    # THEN the good messages were handled once and deleted; the poison one was received maxReceiveCount times
    assert seen["a"] == seen["b"] == seen["c"] == 1
    assert seen["poison"] == 2
    assert sqs.receive_message(QueueUrl=dlq)["Messages"][0]["Body"] == "poison"


def test_sqs_completed_records_count_what_was_done_not_what_was_tried(endpoint: str) -> None:
    # GIVEN a worker that reports "poison" as failed
    url, arn, _ = make_queue("sources-completed", max_receive=5, visibility=30)

    def handler(event: dict[str, Any], _: Any) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]
                                      if r["body"] == "poison"]}  # fmt: skip

    cfg = replace(
        wiring.load().worker, batch_size=10, maximum_batching_window_seconds=0, maximum_concurrency=1
    )
    sqs = aws.client("sqs")
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": b}
                                                  for i, b in enumerate(["a", "b", "poison"])])  # fmt: skip
    source = SqsEventSource(url, arn, handler, cfg)
    source.start()
    try:
        wait_for(lambda: source.stats.snapshot()["records"] >= 3 and depth(url) == 1)
    finally:
        source.stop()
    # THEN every record tried is counted, and only the ones done (and deleted) are completed
    stats = source.stats.snapshot()
    assert (stats["records"], stats["failed_records"], stats["completed_records"]) == (3, 1, 2)


def test_sqs_function_error_fails_the_whole_batch(endpoint: str) -> None:
    url, arn, dlq = make_queue("sources-crash", max_receive=3)
    calls: list[int] = []

    def handler(event: dict[str, Any], _: Any) -> None:
        calls.append(len(event["Records"]))
        if len(calls) == 1:
            raise RuntimeError("crash mid-batch")

    cfg = replace(
        wiring.load().worker, batch_size=10, maximum_batching_window_seconds=1, maximum_concurrency=2
    )
    sqs = aws.client("sqs")
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": str(i)} for i in range(5)])
    source = SqsEventSource(url, arn, handler, cfg)
    source.start()
    try:
        wait_for(lambda: depth(url) == 0 and sum(calls) >= 10)
    finally:
        source.stop()
    assert depth(dlq) == 0
    assert sum(calls) == 10  # the five messages, twice: the crashed batch came back whole
    assert source.stats.snapshot()["errors"] == 1


def test_sqs_invalid_item_identifier_fails_the_whole_batch(endpoint: str) -> None:
    url, arn, _ = make_queue("sources-bad-id", max_receive=5)
    calls: list[int] = []

    def handler(event: dict[str, Any], _: Any) -> dict[str, Any]:
        calls.append(len(event["Records"]))
        return {"batchItemFailures": [{"itemIdentifier": "not-a-message-id"}]} if len(calls) == 1 else {}

    cfg = replace(
        wiring.load().worker, batch_size=10, maximum_batching_window_seconds=1, maximum_concurrency=2
    )
    aws.client("sqs").send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(3)]
    )
    source = SqsEventSource(url, arn, handler, cfg)
    source.start()
    try:
        wait_for(lambda: depth(url) == 0 and sum(calls) >= 6)
    finally:
        source.stop()
    assert sum(calls) == 6


def make_stream(name: str) -> tuple[str, str, str]:
    kinesis = aws.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2})
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    failures = aws.client("sqs").create_queue(QueueName=f"{name}-failures")["QueueUrl"]
    return name, arn, failures


def consumer_cfg(**overrides: Any) -> Any:
    base = next(c for c in wiring.load().stream_consumers if c.name == "archiver")
    return replace(base, **{"maximum_batching_window_seconds": 0, **overrides})


def put(stream: str, values: list[str]) -> None:
    aws.client("kinesis").put_records(
        StreamName=stream, Records=[{"Data": v.encode(), "PartitionKey": "p"} for v in values]
    )


def data_of(event: dict[str, Any]) -> list[str]:
    import base64

    return [base64.b64decode(r["kinesis"]["data"]).decode() for r in event["Records"]]


def test_kinesis_partial_failure_checkpoints_at_the_lowest_failed_sequence(endpoint: str) -> None:
    # GIVEN a consumer that fails record "c" once
    stream, arn, failures = make_stream("sources-checkpoint")
    deliveries: list[list[str]] = []

    def handler(event: dict[str, Any], _: Any) -> dict[str, Any]:
        values = data_of(event)
        deliveries.append(values)
        if len(deliveries) == 1:
            seq = {data_of({"Records": [r]})[0]: r["kinesis"]["sequenceNumber"] for r in event["Records"]}
            return {"batchItemFailures": [{"itemIdentifier": seq["c"]}, {"itemIdentifier": seq["d"]}]}
        return {"batchItemFailures": []}

    put(stream, ["a", "b", "c", "d", "e"])
    source = KinesisEventSource(stream, arn, handler, consumer_cfg(), failures, poll_interval=0.05)
    source.start()
    try:
        wait_for(lambda: len(deliveries) >= 2)
    finally:
        source.stop()
    # THEN the retry starts at "c": "a" and "b" are not delivered again
    assert deliveries[0] == ["a", "b", "c", "d", "e"]
    assert deliveries[1] == ["c", "d", "e"]
    assert depth(failures) == 0


def test_kinesis_function_error_bisects_and_exhausted_retries_go_to_the_destination(endpoint: str) -> None:
    stream, arn, failures = make_stream("sources-bisect")
    deliveries: list[list[str]] = []

    def handler(event: dict[str, Any], _: Any) -> None:
        values = data_of(event)
        deliveries.append(values)
        if "bad" in values:
            raise RuntimeError("poison on the stream")

    put(stream, ["a", "bad", "c", "d"])
    source = KinesisEventSource(
        stream, arn, handler, consumer_cfg(maximum_retry_attempts=2), failures, poll_interval=0.05
    )
    source.start()
    try:
        wait_for(lambda: depth(failures) == 1)
    finally:
        source.stop()
    delivered_ok = {v for batch in deliveries if "bad" not in batch for v in batch}
    assert delivered_ok == {"a", "c", "d"}  # bisection isolated the poison record
    assert ["bad"] in deliveries
    message = orjson.loads(aws.client("sqs").receive_message(QueueUrl=failures)["Messages"][0]["Body"])
    assert message["KinesisBatchInfo"]["batchSize"] == 1
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
