"""Regression tests of the moto patches in local/patches/ (each fails with its patch removed), and their guard.

The delete lock's own regression test is tests/tooling/test_faults_moto_sqs.py.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws
from moto.core import utils as moto_utils
from moto.sqs import models

from local.patches import (
    PatchMismatch,
    kinesis_sequence_ends,
    server_backend_lookup,
    sqs_clock,
    sqs_delete_scan,
    sqs_lazy_attributes,
    sqs_receive_lock,
    sqs_visible_scan,
)
from tests.conftest import REGION

pytestmark = pytest.mark.integration
ACCOUNT = "123456789012"


@pytest.fixture
def clock() -> Iterator[None]:
    original = models.unix_time_millis
    sqs_clock.apply()
    yield
    models.unix_time_millis = original


@pytest.fixture
def lazy_attributes() -> Iterator[property]:
    """The patch applied; yields moto's own property, to compare against."""
    original = inspect.getattr_static(models.Queue, "attributes")
    sqs_lazy_attributes.apply()
    yield original
    models.Queue.attributes = original  # type: ignore[method-assign]


@pytest.fixture
def receive_lock() -> Iterator[None]:
    original = models.SQSBackend.receive_message
    sqs_receive_lock.apply()
    yield
    models.SQSBackend.receive_message = original  # type: ignore[method-assign]


@pytest.fixture
def delete_scan() -> Iterator[Any]:
    """The patch applied; yields moto's own method, to compare against."""
    original = models.Queue.delete_message
    sqs_delete_scan.apply()
    yield original
    models.Queue.delete_message = original  # type: ignore[method-assign]


@pytest.fixture
def backend_lookup() -> Iterator[Any]:
    from moto.moto_server import werkzeug_app

    original = werkzeug_app.DomainDispatcherApplication.get_backend_for_host
    server_backend_lookup.apply()
    yield original
    werkzeug_app.DomainDispatcherApplication.get_backend_for_host = original  # type: ignore[method-assign]


@pytest.fixture
def visible_scan() -> Iterator[property]:
    """The patch applied; yields moto's own property, to compare against."""
    original = inspect.getattr_static(models.Queue, "messages")
    sqs_visible_scan.apply()
    yield original
    models.Queue.messages = original  # type: ignore[method-assign]


@pytest.fixture
def sequence_ends() -> Iterator[None]:
    from moto.kinesis import models as kinesis

    originals = kinesis.Shard.get_max_sequence_number, kinesis.Shard.get_min_sequence_number
    kinesis_sequence_ends.apply()
    yield
    kinesis.Shard.get_max_sequence_number, kinesis.Shard.get_min_sequence_number = originals  # type: ignore[method-assign]


def queue_with(n: int, name: str = "q", **kwargs: Any) -> models.Queue:
    queue = models.Queue(name, region=REGION, account_id=ACCOUNT, **kwargs)
    for i in range(n):
        queue.add_message(models.Message(f"m{i}", f"body {i}"))
    return queue


def test_sqs_clock_reads_time_without_datetime_per_message(
    clock: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a queue 500 deep, and moto's datetime-based clock counted
    queue = queue_with(500)
    calls = {"n": 0}
    real = moto_utils.unix_time

    def counted(dt: Any = None) -> float:
        calls["n"] += 1
        return float(real(dt))

    monkeypatch.setattr(moto_utils, "unix_time", counted)
    # WHEN the depth is read (every message's visibility and delay checked)
    depth = queue.approximate_number_of_messages
    # THEN it is right, no message went through datetime, and the clock reads the same UTC epoch ms
    assert depth == 500
    assert calls["n"] == 0
    assert abs(models.unix_time_millis() - real() * 1000.0) < 1000


def test_sqs_lazy_attributes_compute_only_what_is_read(
    lazy_attributes: property, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a queue whose message counts must not be computed to read another attribute
    queue = queue_with(3, VisibilityTimeout="7")

    def expensive(self: Any) -> int:
        raise AssertionError("a message count was computed to read VisibilityTimeout")

    monkeypatch.setattr(models.Queue, "approximate_number_of_messages", property(expensive))
    # WHEN one attribute is read (what every SendMessage does for ContentBasedDeduplication)
    # THEN only that one is computed
    assert queue.attributes["VisibilityTimeout"] == 7


@pytest.mark.parametrize("kwargs", [{}, {"FifoQueue": "true", "ContentBasedDeduplication": "true"},
                                    {"Policy": '{"Version": "2012-10-17", "Statement": []}'}])  # fmt: skip
def test_sqs_lazy_attributes_read_the_same_as_moto(lazy_attributes: property, kwargs: dict[str, str]) -> None:
    fifo = "FifoQueue" in kwargs  # (a FIFO queue dedupes on send timestamps only a backend sets)
    queue = queue_with(0 if fifo else 2, "q.fifo" if fifo else "q", **kwargs)
    assert dict(queue.attributes) == lazy_attributes.fget(queue)  # type: ignore[misc]


def test_sqs_receive_lock_serializes_receives_with_the_queue_lock(receive_lock: None) -> None:
    with mock_aws():
        backend = models.sqs_backends[ACCOUNT][REGION]
        queue = backend.create_queue("recv")
        backend.send_message("recv", "hello")
        got: list[Any] = []
        # GIVEN another thread inside the queue's critical section (iterating its pending set)
        with queue._messages_lock:
            receiver = threading.Thread(target=lambda: got.extend(backend.receive_message("recv", 1, 0, 30)))
            receiver.start()
            receiver.join(0.5)
            # THEN a receive waits for it instead of changing the set underneath it
            assert receiver.is_alive() and got == []
        receiver.join(5)
        assert [m.body for m in got] == ["hello"]


def received_queue(n: int, received: int) -> tuple[models.Queue, list[str]]:
    """A queue ``n`` deep whose ``received`` oldest messages were received (the third one twice)."""
    queue = queue_with(n)
    for message in queue._messages[:received]:
        message.mark_received(visibility_timeout=30)
    queue._messages[2].mark_received(visibility_timeout=30)
    queue.pending_messages.update(queue._messages[:received])
    return queue, [m.receipt_handle for m in queue._messages[:received]]


def test_sqs_delete_scan_stops_at_the_message(delete_scan: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a deep queue whose oldest messages are in flight, and moto's whole-queue scan made to fail
    queue, handles = received_queue(2000, 10)

    def scanned(self: Any, receipt_handle: str) -> bool:
        raise AssertionError("every message of the queue was asked for the receipt handle")

    monkeypatch.setattr(models.Message, "had_receipt_handle", scanned)
    # WHEN the in-flight messages are deleted, THEN only they are gone and none was scanned for
    for handle in handles:
        queue.delete_message(handle)
    assert len(queue._messages) == 1990 and not queue.pending_messages


def test_sqs_delete_scan_deletes_as_moto_does(delete_scan: Any) -> None:
    outcomes = []
    for delete in (delete_scan, models.Queue.delete_message):
        queue, handles = received_queue(50, 5)
        old = queue._messages[2]._old_receipt_handles[0]
        delete(queue, handles[4])
        delete(queue, handles[4])  # a handle already deleted is ignored
        delete(queue, old)  # a message's earlier receipt handle still deletes it
        with pytest.raises(models.ReceiptHandleIsInvalid):
            delete(queue, "not-a-handle")
        outcomes.append(([m.body for m in queue._messages], sorted(m.body for m in queue.pending_messages),
                         len(queue.deleted_messages)))  # fmt: skip
    assert outcomes[0] == outcomes[1]


def test_server_backend_lookup_lists_moto_once(backend_lookup: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    hosts = [
        None,
        "moto_api",
        "sqs",
        "dynamodb",
        "sqs.us-east-1.amazonaws.com",
        "kinesis.us-east-1.amazonaws.com",
    ]
    app = DomainDispatcherApplication(lambda backend: None)  # type: ignore[arg-type,return-value]
    expected = [backend_lookup(app, host) for host in hosts]
    listed = {"n": 0}
    real = backends.list_of_moto_modules

    def counted() -> Any:
        listed["n"] += 1
        return real()

    monkeypatch.setattr(backends, "list_of_moto_modules", counted)
    # WHEN every host is looked up three times, THEN the answers are moto's and the package is listed once per host
    for _ in range(3):
        assert [app.get_backend_for_host(host) for host in hosts] == expected
    assert listed["n"] <= len(hosts)


def test_sqs_visible_scan_reads_the_clock_once_per_scan(
    visible_scan: property, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a queue 300 deep: some in flight, one delayed, the clock counted
    queue, _ = received_queue(300, 20)
    queue._messages[50].delay(60)
    reads = {"n": 0}
    real = models.unix_time_millis

    def counted(dt: Any = None) -> float:
        reads["n"] += 1
        return float(real(dt))

    monkeypatch.setattr(models, "unix_time_millis", counted)
    # WHEN a receive lists what it may take THEN it is what moto lists, for one clock read
    listed = queue.messages
    assert reads["n"] == 1
    assert listed == visible_scan.fget(queue)  # type: ignore[misc]
    assert len(listed) == 279


def test_kinesis_sequence_ends_do_not_copy_the_shard(sequence_ends: None) -> None:
    from moto.kinesis import models as kinesis

    shard = kinesis.Shard(0, 0, 2**128)
    assert (shard.get_min_sequence_number(), shard.get_max_sequence_number()) == (0, 0)
    for i in range(5):
        shard.put_record(f"k{i}", "data", "")

    class NoCopy(dict):  # type: ignore[type-arg]
        def keys(self) -> Any:
            raise AssertionError("every key of the shard was copied")

    shard.records = NoCopy(shard.records)
    assert (shard.get_min_sequence_number(), shard.get_max_sequence_number()) == (1, 5)
    assert shard.put_record("k", "data", "") == "6"


def test_a_patch_refuses_to_load_on_another_moto_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqs_clock, "CHECKED", "0.0.1")
    with pytest.raises(
        PatchMismatch, match=r"moto moto.sqs.models.unix_time_millis .*moto 0.0.1, but moto \S+ is installed"
    ):
        sqs_clock.apply()
