"""Faults that lose nothing: the local stack under the failures AWS really produces.

Every case asserts the same invariant: every record the API answered 202 for is in DynamoDB exactly
once (nothing missing, nothing extra) and on the Kinesis stream at least once, the queue drains and
nothing valid reaches the DLQ. The archive and rollup cases also prove the stream consumers' effects
are exact. Faults come from the chaos proxy (``local/chaos.py``) between the handlers and the emulator,
or from handlers that crash on purpose (``tests/support/fault_handlers.py``). Each case prints its counts.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

from local.chaos import ChaosRules
from local.runtime import LocalRuntime
from tests.support import fault_handlers
from tests.support.localkit import Sender, inspector, local_stack, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def settle(runtime: LocalRuntime, sender: Sender, *, archive: bool = False) -> dict[str, object]:
    """Wait for the pipeline to drain, then check the invariant and return the counts for the printout."""
    direct, s = inspector(runtime), runtime.stack
    assert s is not None
    accepted = sender.all
    wait_for(lambda: direct.depth(s.queue_url) == 0 and set(direct.stored_keys()) >= accepted, timeout=300)
    if archive:
        wanted = Counter(e for _, e in accepted)
        wait_for(lambda: direct.archived() == wanted, timeout=300, interval=2)
    keys = direct.stored_keys()
    stream = Counter(direct.stream_ids())
    counts: dict[str, object] = {
        "accepted": len(accepted), "requests": sender.requests, "client_503_retries": sender.retries_503,
        "stored": len(keys), "on_stream": sum(stream.values()), "stream_duplicates": sum(stream.values()) - len(stream),
        "dlq": direct.depth(s.dlq_url), "injected": runtime.chaos.counts if runtime.chaos else {},
        "crashes": {f: fault_handlers.CRASHES[f] for f in fault_handlers.PLAN}, "sources": runtime.stats(),
    }  # fmt: skip
    # THEN every accepted record is stored exactly once and nothing else is stored
    assert len(keys) == len(set(keys))
    assert set(keys) == accepted
    # AND every accepted record is on the stream
    assert {e for _, e in accepted} <= set(stream)
    # AND the queue drained without dead-lettering anything valid
    assert direct.depth(s.queue_url) == 0
    assert direct.depth(s.dlq_url) == 0
    return counts


def test_ingest_loses_nothing_when_kinesis_and_sqs_fail_entries_and_throttle(tmp_path: Path) -> None:
    # GIVEN a proxy failing 20 % of PutRecords and SendMessageBatch entries and throttling 10 % of calls
    rules = ChaosRules(seed=11, kinesis_entry_failure=0.2, sqs_entry_failure=0.2,
                       throttle={"kinesis:PutRecords": 0.1, "sqs:SendMessageBatch": 0.1})  # fmt: skip
    with local_stack(tmp_path, "f-ingest", chaos=rules, visibility_timeout=10) as runtime:
        sender = Sender(runtime.api_url)
        # WHEN 300 records arrive in 12 requests of 25 from 4 clients
        sender.send_many("acme", batches=12, per_batch=25)
        assert runtime.chaos is not None
        injected = runtime.chaos.counts
        runtime.chaos.calm()  # let the stream consumers and the worker drain undisturbed
        counts = settle(runtime, sender)
    print(f"\nkinesis/sqs entry faults: {counts}")
    # THEN faults really happened (they are what the invariant survived)
    assert injected.get("kinesis:PutRecords:entries_failed", 0) > 0
    assert injected.get("sqs:SendMessageBatch:entries_failed", 0) > 0


def test_worker_loses_nothing_when_dynamodb_returns_unprocessed_items_and_throttles(tmp_path: Path) -> None:
    # GIVEN a proxy handing back 30 % of BatchWriteItem puts as UnprocessedItems and throttling 15 % of calls
    rules = ChaosRules(seed=5, dynamodb_unprocessed=0.3, throttle={"dynamodb:BatchWriteItem": 0.15})
    with local_stack(tmp_path, "f-ddb", chaos=rules, visibility_timeout=15) as runtime:
        sender = Sender(runtime.api_url)
        # WHEN 300 records are accepted and the worker stores them through the faults
        sender.send_many("acme", batches=6, per_batch=50)
        assert runtime.chaos is not None
        wait_for(lambda: inspector(runtime).depth(runtime.stack.queue_url) == 0, timeout=240)  # type: ignore[union-attr]
        injected = runtime.chaos.counts
        counts = settle(runtime, sender)
    print(f"\ndynamodb faults: {counts}")
    assert injected.get("dynamodb:BatchWriteItem:unprocessed", 0) > 0
    assert injected.get("dynamodb:BatchWriteItem:throttled", 0) > 0


def test_worker_crashing_mid_batch_rewrites_the_same_items(tmp_path: Path) -> None:
    # GIVEN a worker that crashes on every 2nd invocation after storing the first half of its batch
    fault_handlers.arm("worker", crashes=3, every=2)
    try:
        with local_stack(tmp_path, "f-crash", visibility_timeout=3,
                         handlers={"worker": "tests.support.fault_handlers.worker_handler"}) as runtime:  # fmt: skip
            sender = Sender(runtime.api_url)
            # WHEN 300 records are accepted; the crashed batches come back after the visibility timeout
            sender.send_many("acme", batches=6, per_batch=50)
            wait_for(lambda: fault_handlers.CRASHES["worker"] >= 3, timeout=120)
            counts = settle(runtime, sender)
    finally:
        fault_handlers.disarm()
    print(f"\nworker crashes: {counts}")
    # THEN the crashes happened and the invocations that failed were retried (errors counted by the source)
    assert fault_handlers.CRASHES["worker"] == 3
    assert counts["sources"]["worker"]["errors"] >= 3  # type: ignore[index]


def test_stream_consumers_crashing_after_half_a_batch_leave_an_exact_archive_and_rollup(
    tmp_path: Path,
) -> None:
    # GIVEN an archiver and a rollup that crash after applying half a batch, and S3 throttling 20 % of puts
    fault_handlers.arm("archiver", crashes=3, every=1)
    fault_handlers.arm("rollup", crashes=3, every=1)
    handlers = {
        "archiver": "tests.support.fault_handlers.archiver_handler",
        "rollup": "tests.support.fault_handlers.rollup_handler",
    }
    try:
        with local_stack(tmp_path, "f-stream", visibility_timeout=10, handlers=handlers,
                         chaos=ChaosRules(seed=9, throttle={"s3:PUT": 0.2})) as runtime:  # fmt: skip
            sender = Sender(runtime.api_url)
            # WHEN 300 records in two tenants are accepted
            for tenant in ("acme", "globex"):
                sender.send_many(tenant, batches=3, per_batch=50, tag=tenant)
            counts = settle(runtime, sender, archive=True)
            direct = inspector(runtime)
            archived = direct.archived()
            wait_for(lambda: direct.rollup_counts() == {t: len(ids) for t, ids in sender.accepted.items()})
            rollup = direct.rollup_counts()
    finally:
        fault_handlers.disarm()
    print(
        f"\nstream consumer crashes: {counts}; archived lines {sum(archived.values())}; rollup {dict(rollup)}"
    )
    assert fault_handlers.CRASHES["archiver"] >= 1 and fault_handlers.CRASHES["rollup"] >= 1
    # THEN each accepted record is in exactly one archive object, and nothing else is archived
    assert archived == Counter(e for _, e in sender.all)
    # AND the rollup counted each record exactly once per tenant
    assert rollup == {t: len(ids) for t, ids in sender.accepted.items()}


def test_an_outage_during_ingest_gives_503_and_client_retries_create_no_duplicates(tmp_path: Path) -> None:
    # GIVEN a publish budget shorter than the outage, so a request inside the outage cannot be absorbed
    with local_stack(tmp_path, "f-outage", chaos=ChaosRules(), visibility_timeout=10,
                     extra_env={"PUBLISH_BUDGET_SECONDS": "2"}) as runtime:  # fmt: skip
        assert runtime.chaos is not None
        sender = Sender(runtime.api_url)
        sender.send_many("acme", batches=4, per_batch=25, tag="before")
        # WHEN the emulator is unreachable (503) for 10 s while clients keep sending
        runtime.chaos.outage(10)
        background = threading.Thread(target=sender.send_many, args=("acme", 8, 25), kwargs={"tag": "during"})
        background.start()
        sender.send("acme", "inside-the-outage", [{"type": "probe", "i": i} for i in range(10)])
        background.join()
        counts = settle(runtime, sender)
    print(f"\noutage: {counts}; statuses {dict(sender.statuses)}; retry-after {sender.retry_after_seen}")
    # THEN clients were told to come back later, with Retry-After, and their retries duplicated nothing
    assert sender.statuses[503] >= 1
    assert sender.retry_after_seen == {"2"}
    assert counts["accepted"] == 4 * 25 + 8 * 25 + 10
