"""publish() answers by its deadline, whatever the sinks do; deadline-bound clients fit in the time left."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from core import aws
from core.retry import Backoff, Deadline
from ingest.publish import TIMEOUT_CODE, OutRecord, SinkResult, SqsPublisher, publish, publish_pool


class StuckSink:
    """A sink whose every call hangs until released (a connection that never answers)."""

    name = "stuck"

    def __init__(self) -> None:
        self.release = threading.Event()

    def batches(self, records: Sequence[OutRecord]) -> list[list[OutRecord]]:
        return [list(records)]

    def put_batch(self, batch: list[OutRecord], deadline: Deadline) -> SinkResult:
        self.release.wait(10)
        return SinkResult()


def records(n: int) -> list[OutRecord]:
    return [OutRecord(f"id-{i}", f"id-{i}", "{}", 2) for i in range(n)]


def test_a_sink_stuck_past_the_budget_is_reported_failed_at_the_deadline() -> None:
    # GIVEN a sink that never answers
    sink = StuckSink()
    try:
        start = time.monotonic()
        # WHEN three records are published with a 0.3 s budget
        report = publish(records(3), [sink], 0.3, publish_pool())
        elapsed = time.monotonic() - start
    finally:
        sink.release.set()
    # THEN publish returns at the deadline, with every record missing as a timeout
    assert elapsed < 1.0
    assert report.missing == {f"id-{i}": TIMEOUT_CODE for i in range(3)}


class CountingClient:
    def __init__(self) -> None:
        self.calls = 0

    def send_message_batch(self, **_: object) -> dict[str, object]:
        self.calls += 1
        return {"Successful": [], "Failed": []}


def test_no_attempt_starts_once_the_deadline_has_passed() -> None:
    client = CountingClient()
    publisher = SqsPublisher("https://sqs.example/q", client=client, backoff=Backoff(max_attempts=3))
    deadline = Deadline(0.0)
    result = publisher.put_batch(records(2), deadline)
    assert client.calls == 0 and set(result.failed.values()) == {TIMEOUT_CODE}


def test_timeout_steps_never_exceed_the_time_left() -> None:
    assert aws.timeout_step(7.9) == 5.0
    assert aws.timeout_step(2.5) == 2.0
    assert aws.timeout_step(0.6) == 0.5
    # below the smallest step the smallest is used; publish's own wait bounds the rest
    assert aws.timeout_step(0.01) == aws.TIMEOUT_LADDER[0]


def test_a_bounded_client_has_no_botocore_retries_and_timeouts_inside_its_budget() -> None:
    config = aws.bounded_config(1.0)
    assert config.read_timeout == 1.0 and config.connect_timeout == 1.0
    assert config.retries == {"mode": "standard", "total_max_attempts": 1}
    client = aws.client_within("sqs", 1.2)
    assert client.meta.config.read_timeout == 1.0
    assert client.meta.config.retries["total_max_attempts"] == 1
    assert client in aws.client.made("sqs")


class QuickSink:
    name = "quick"

    def batches(self, records: Sequence[OutRecord]) -> list[list[OutRecord]]:
        return [list(records)]

    def put_batch(self, batch: list[OutRecord], deadline: Deadline) -> SinkResult:
        return SinkResult()


def test_a_container_publishes_on_its_own_pool_so_another_containers_busy_pool_does_not_queue_it() -> None:
    # GIVEN one container's pool taken by a publish that does not finish (one thread, to keep it small)
    busy, release = ThreadPoolExecutor(1), threading.Event()
    busy.submit(release.wait, 10)
    try:
        # WHEN another container publishes on its own pool, and a third on the busy one
        own = publish(records(2), [QuickSink()], 0.3, publish_pool())
        queued = publish(records(2), [QuickSink()], 0.3, busy)
    finally:
        release.set()
    # THEN only the one queued behind the busy pool misses its deadline
    assert own.missing == {}
    assert queued.missing == {"id-0": TIMEOUT_CODE, "id-1": TIMEOUT_CODE}
