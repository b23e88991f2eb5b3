"""moto-backed AWS for the integration layer: one ``mock_aws``, explicit region, resources per test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.inspect import StackInspector
from tests.conftest import REGION


@dataclass
class Pipeline:
    sqs: Any
    kinesis: Any
    dynamodb: Any
    queue_url: str
    stream_name: str

    def queue_bodies(self) -> list[str]:
        bodies: list[str] = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return bodies
            bodies.extend(m["Body"] for m in messages)
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )

    def stream_bodies(self) -> list[bytes]:
        return StackInspector(kinesis=self.kinesis, stream_name=self.stream_name).stream_data()


@pytest.fixture
def pipeline(monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        kinesis = boto3.client("kinesis", region_name=REGION)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="sluice-events")["QueueUrl"]
        kinesis.create_stream(StreamName="sluice-events", ShardCount=2)
        monkeypatch.setenv("QUEUE_URL", queue_url)
        monkeypatch.setenv("STREAM_NAME", "sluice-events")
        yield Pipeline(sqs, kinesis, dynamodb, queue_url, "sluice-events")
