"""The SQS event source on a deep queue: the rest of a batch is received at once (and its deletes sent
together), and batches still never exceed ``batch_size`` nor run above ``maximum_concurrency``."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest

from core import aws, wiring
from local.sources import SqsEventSource
from tests.tooling.test_local_sources import depth, endpoint, make_queue, moto_url, wait_for  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.mark.usefixtures("endpoint")
def test_a_deep_queue_fills_batches_to_the_size_and_deletes_every_message() -> None:
    # GIVEN 200 messages queued before the source starts (a deep queue), batches of 100, two at a time
    url, arn, _ = make_queue("sources-deep", max_receive=5, visibility=30)
    sqs = aws.client("sqs")
    for start in range(0, 200, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{start + i}"}
                                                      for i in range(10)])  # fmt: skip
    sizes: list[int] = []
    seen: list[str] = []
    running, most = [0], [0]
    lock = threading.Lock()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            sizes.append(len(event["Records"]))
            seen.extend(r["body"] for r in event["Records"])
        threading.Event().wait(0.2)
        with lock:
            running[0] -= 1
        return {"batchItemFailures": []}

    cfg = replace(
        wiring.load().worker, batch_size=100, maximum_batching_window_seconds=1, maximum_concurrency=2
    )
    source = SqsEventSource(url, arn, handler, cfg)
    # WHEN it drains the queue
    source.start()
    try:
        wait_for(lambda: len(seen) >= 200 and depth(url) == 0)
    finally:
        source.stop()
    # THEN every message was handled once and deleted, no batch was over 100, at most two ran at once
    assert sorted(seen) == sorted(f"m{i}" for i in range(200))
    assert max(sizes) <= 100 and sum(sizes) == 200
    assert most[0] <= 2
    assert 100 in sizes
