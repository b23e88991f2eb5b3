"""The local emulator (moto server with the patches of local/patches/, local/moto_server.py): concurrent sends and deletes lose no
message, and queue attributes read the same as moto's own."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import boto3
import orjson
import pytest

from local import emulator

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    emu = emulator.start(emulator.free_port())
    try:
        yield emu.url
    finally:
        emu.stop()


def test_concurrent_sends_and_deletes_lose_no_message(url: str) -> None:
    # GIVEN 4 threads sending 2,000 messages while 4 threads receive and delete
    sqs = boto3.client("sqs", endpoint_url=url)
    queue = sqs.create_queue(QueueName="race", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    received: set[str] = set()
    lock = threading.Lock()
    sending_done = threading.Event()

    def send(thread: int) -> None:
        client = boto3.client("sqs", endpoint_url=url)
        for batch in range(50):
            entries = [{"Id": str(i), "MessageBody": f"{thread}-{batch}-{i}"} for i in range(10)]
            client.send_message_batch(QueueUrl=queue, Entries=entries)

    def drain() -> None:
        client = boto3.client("sqs", endpoint_url=url)
        idle = 0
        while idle < 3:
            got = client.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []
            )
            idle = idle + 1 if not got and sending_done.is_set() else 0
            with lock:
                received.update(m["Body"] for m in got)
            for m in got:
                client.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])

    senders = [threading.Thread(target=send, args=(t,)) for t in range(4)]
    drainers = [threading.Thread(target=drain) for _ in range(4)]
    for t in drainers + senders:
        t.start()
    for t in senders:
        t.join()
    sending_done.set()
    for t in drainers:
        t.join()
    # THEN every message was received (moto as shipped dropped some: delete rebuilt the list from a snapshot)
    assert len(received) == 2000


def test_queue_attributes_read_as_moto_defines_them(url: str) -> None:
    sqs = boto3.client("sqs", endpoint_url=url)
    dlq = sqs.create_queue(QueueName="attrs-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}
    queue = sqs.create_queue(
        QueueName="attrs",
        Attributes={"VisibilityTimeout": "7", "RedrivePolicy": orjson.dumps(redrive).decode()},
    )["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="x")
    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "7"
    assert attrs["ApproximateNumberOfMessages"] == "1"
    assert orjson.loads(attrs["RedrivePolicy"]) == redrive
    assert {"QueueArn", "CreatedTimestamp", "MessageRetentionPeriod", "DelaySeconds"} <= attrs.keys()
    one = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"
    ]
    assert one == {"ApproximateNumberOfMessages": "1"}
