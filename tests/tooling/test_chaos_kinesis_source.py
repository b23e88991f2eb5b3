"""The local Kinesis event source must not skip a batch whose failure it could not record.

Seen in the outage fault test: a stream consumer out of retries sends the batch's pointer to the
on-failure destination; when that send fails too (the whole endpoint is down), ``_run`` has already
moved its shard iterator past the batch, so the records are skipped with no pointer anywhere. Lambda
does not lose a batch that way. This test drives the event source with in-memory fakes (no sockets).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from core.wiring import StreamConsumerWiring
from local import sources
from local.sources import KinesisEventSource

CFG = StreamConsumerWiring(
    name="archiver", handler="unused", function_timeout_seconds=5, batch_size=10,
    maximum_batching_window_seconds=0, starting_position="TRIM_HORIZON", bisect_batch_on_function_error=False,
    maximum_retry_attempts=0, maximum_record_age_in_seconds=-1, parallelization_factor=1,
)  # fmt: skip


class FakeKinesis:
    def list_shards(self, **_: Any) -> dict[str, Any]:
        return {"Shards": [{"ShardId": "shardId-000000000000"}]}

    def get_shard_iterator(self, **_: Any) -> dict[str, Any]:
        return {"ShardIterator": "at-batch"}

    def get_records(self, ShardIterator: str, **_: Any) -> dict[str, Any]:
        if ShardIterator == "at-batch":
            record = {"SequenceNumber": "1", "PartitionKey": "k", "Data": b"{}",
                      "ApproximateArrivalTimestamp": datetime.now(UTC)}  # fmt: skip
            return {"Records": [record], "NextShardIterator": "after-batch"}
        return {"Records": [], "NextShardIterator": "after-batch"}


class FlakySqs:
    """The on-failure destination: down for the first send, up after."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.calls = 0
        self.lock = threading.Lock()

    def send_message(self, QueueUrl: str, MessageBody: str) -> dict[str, Any]:
        with self.lock:
            self.calls += 1
            if self.calls == 1:
                raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessage")
            self.sent.append(MessageBody)
        return {"MessageId": "m"}


def test_a_batch_whose_failure_cannot_be_recorded_is_read_again_not_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kinesis, sqs = FakeKinesis(), FlakySqs()

    def fake_client(service: str) -> Any:
        return kinesis if service == "kinesis" else sqs

    fake_client.cache_clear = lambda: None  # type: ignore[attr-defined]  # the autouse fixture calls it
    monkeypatch.setattr(sources.aws, "client", fake_client)

    def always_failing(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {
            "batchItemFailures": [
                {"itemIdentifier": r["kinesis"]["sequenceNumber"]} for r in event["Records"]
            ]
        }

    source = KinesisEventSource(
        "s", "arn:aws:kinesis:us-east-1:000000000000:stream/s", always_failing, CFG, "q"
    )
    # WHEN the consumer fails its batch past the retry limit and the destination is down at first
    source.start()
    try:
        deadline = time.monotonic() + 5
        while not sqs.sent and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        source.stop()
    # THEN the batch was read again and its pointer recorded once the destination was back
    assert len(sqs.sent) >= 1
