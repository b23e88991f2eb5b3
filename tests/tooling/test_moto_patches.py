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
    kinesis_put_lock,
    kinesis_sequence_ends,
    server_backend_lookup,
    sqs_clock,
    sqs_delete_scan,
    sqs_fair_queue,
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
def kinesis_lock() -> Iterator[None]:
    from moto.kinesis import models as kinesis_models

    original = kinesis_models.Shard.put_record
    kinesis_put_lock.apply()
    yield
    kinesis_models.Shard.put_record = original  # type: ignore[method-assign]


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


def _racing_puts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Two puts on one shard, the first held right after it read the highest sequence number."""
    from moto.kinesis import models as kinesis_models

    shard = kinesis_models.Shard(0, 0, 2**128)
    first_read, second_done = threading.Event(), threading.Event()
    read_max = kinesis_models.Shard.get_max_sequence_number

    def slow_read(self: Any) -> int:
        value = read_max(self)
        if threading.current_thread().name == "first":
            first_read.set()
            second_done.wait(1.0)  # the race: the second put runs between this read and the store
        return value

    monkeypatch.setattr(kinesis_models.Shard, "get_max_sequence_number", slow_read)
    shard.put_record("k", "zero", "1")  # so the next puts read the highest number, not an empty shard
    first = threading.Thread(target=lambda: shard.put_record("k", "first", "1"), name="first")
    first.start()
    first_read.wait(1.0)
    second = threading.Thread(target=lambda: shard.put_record("k", "second", "1"), name="second")
    second.start()
    second.join(0.5)
    second_done.set()
    first.join(5)
    second.join(5)
    return sorted(r.data for r in shard.records.values())


def test_kinesis_put_lock_keeps_both_of_two_concurrent_puts(
    kinesis_lock: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two puts on one shard racing between reading the highest sequence number and storing
    # THEN with the patch both records are on the shard
    assert _racing_puts(monkeypatch) == ["first", "second", "zero"]


def test_without_the_kinesis_put_lock_one_of_two_concurrent_puts_is_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The race the patch fixes, shown on moto as shipped: the later store replaces the earlier record.
    assert len(_racing_puts(monkeypatch)) == 2


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


def test_sqs_visible_scan_a_receive_walks_the_head_not_the_queue(
    visible_scan: property, lazy_attributes: property
) -> None:
    # (with the attribute patch, as in the emulator: moto's eager attributes count the queue per message)
    looked = {"n": 0}

    class Counted(list[Any]):
        def __getitem__(self, i: Any) -> Any:
            got = super().__getitem__(i)
            looked["n"] += len(got) if isinstance(i, slice) else 1
            return got

        def __iter__(self) -> Iterator[Any]:
            for m in super().__iter__():
                looked["n"] += 1
                yield m

    with mock_aws():
        # GIVEN a queue 2,000 deep whose 20 oldest are in flight, and a count of the messages looked at
        backend = models.sqs_backends[ACCOUNT][REGION]
        queue = backend.create_queue("deep")
        for i in range(2000):
            backend.send_message("deep", f"body {i}")
        backend.receive_message("deep", 10, 0, 30)
        backend.receive_message("deep", 10, 0, 30)
        queue._messages = Counted(queue._messages)
        # WHEN a receive takes ten
        got = [m.body for m in backend.receive_message("deep", 10, 0, 30)]
        # THEN it took the next ten in moto's order, looking at the head only
        assert got == [f"body {i}" for i in range(20, 30)]
        assert looked["n"] <= 100  # moto's own scan looks at all 2,000
        # and a count still sees every visible message
        assert len(queue.messages) == 2000 - 30


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


@pytest.fixture
def fair_queue() -> Iterator[None]:
    original = inspect.getattr_static(models.Queue, "messages")
    sqs_fair_queue.apply()
    yield
    models.Queue.messages = original  # type: ignore[method-assign]


def flood_then_quiet(backend: Any) -> str:
    """A standard queue: 40 of tenant flood's messages in flight and 20 waiting, then 5 of tenant quiet sent."""
    queue = backend.create_queue("fair")
    for i in range(60):
        backend.send_message("fair", f"flood {i}", group_id="flood")
    received = [m for _ in range(4) for m in backend.receive_message("fair", 10, 0, 300)]
    assert len(received) == 40 and not queue.fifo_queue
    for i in range(5):
        backend.send_message("fair", f"quiet {i}", group_id="quiet")
    return "fair"


def test_sqs_fair_queue_delivers_quiet_groups_first_while_one_is_noisy(fair_queue: None) -> None:
    with mock_aws():
        backend = models.sqs_backends[ACCOUNT][REGION]
        name = flood_then_quiet(backend)
        # WHEN a consumer receives while flood holds 40 of the 40 messages in flight
        bodies = [m.body for m in backend.receive_message(name, 10, 0, 300)]
    # THEN quiet's five come first, then flood's backlog (nothing is held back)
    assert bodies[:5] == [f"quiet {i}" for i in range(5)]
    assert bodies[5:] == [f"flood {i}" for i in range(40, 45)]


def test_sqs_fair_queue_composes_with_the_visible_scan_patch_applied_first() -> None:
    # GIVEN the order local/moto_server.py applies them in: visible_scan replaces the getter first
    original = inspect.getattr_static(models.Queue, "messages")
    try:
        sqs_visible_scan.apply()
        sqs_fair_queue.apply()
        with mock_aws():
            backend = models.sqs_backends[ACCOUNT][REGION]
            name = flood_then_quiet(backend)
            bodies = [m.body for m in backend.receive_message(name, 10, 0, 300)]
        # THEN the fair order still holds over the one-clock-read scan
        assert bodies[:5] == [f"quiet {i}" for i in range(5)]
    finally:
        models.Queue.messages = original  # type: ignore[method-assign]


def test_sqs_fair_queue_keeps_order_when_no_group_is_noisy(fair_queue: None) -> None:
    with mock_aws():
        backend = models.sqs_backends[ACCOUNT][REGION]
        backend.create_queue("calm")
        for tenant in ("a", "b"):
            for i in range(5):
                backend.send_message("calm", f"{tenant} {i}", group_id=tenant)
        first = [m.body for m in backend.receive_message("calm", 3, 0, 300)]
        rest = [m.body for m in backend.receive_message("calm", 10, 0, 300)]
    assert first + rest == [f"{t} {i}" for t in ("a", "b") for i in range(5)]


class _Msg:
    """What fair_order reads of a moto message: its group (None when it has none)."""

    def __init__(self, group_id: str | None) -> None:
        self.group_id = group_id


def _fair_order_by_definition(visible: list[Any], in_flight: list[Any]) -> list[Any]:
    # The definition in the patch's docstring, written plainly: quiet first, then noisy by fewest in flight.
    def group(m: Any) -> object:
        return m.group_id or id(m)

    counts: dict[object, int] = {}
    for m in in_flight:
        counts[group(m)] = counts.get(group(m), 0) + 1
    total = len(in_flight)
    noisy = {g: n for g, n in counts.items()
             if n >= sqs_fair_queue.NOISY_MIN_IN_FLIGHT and n > sqs_fair_queue.NOISY_SHARE * total}  # fmt: skip
    quiet = [m for m in visible if group(m) not in noisy]
    rest = sorted((m for m in visible if group(m) in noisy), key=lambda m: noisy[group(m)])
    return quiet + rest


@pytest.mark.parametrize("seed", range(40))
def test_sqs_fair_queue_order_matches_its_definition(seed: int) -> None:
    import random

    rng = random.Random(seed)
    groups = [None, "", "a", "b", "c"][: rng.randrange(1, 6)]
    weights = [rng.randrange(1, 10) for _ in groups]
    in_flight = [_Msg(g) for g in rng.choices(groups, weights, k=rng.randrange(0, 200))]
    visible = [_Msg(g) for g in rng.choices(groups, weights, k=rng.randrange(0, 60))]
    assert sqs_fair_queue.fair_order(visible, in_flight) == _fair_order_by_definition(visible, in_flight)


def test_sqs_fair_queue_one_noisy_group_and_nothing_quiet_keeps_the_list() -> None:
    # A burst from one tenant: every receive at depth would otherwise copy and sort the whole queue.
    visible = [_Msg("flood") for _ in range(1000)]
    in_flight = [_Msg("flood") for _ in range(100)]
    assert sqs_fair_queue.fair_order(visible, in_flight) is visible


def test_sqs_fair_queue_does_not_scan_when_only_the_noisy_group_was_ever_sent() -> None:
    class Unscannable(list[Any]):
        def __iter__(self) -> Iterator[Any]:
            raise AssertionError("the visible messages were scanned")

    visible = Unscannable([_Msg("flood")])
    in_flight = [_Msg("flood") for _ in range(100)]
    assert sqs_fair_queue.fair_order(visible, in_flight, {"flood"}) is visible
    with pytest.raises(AssertionError, match="scanned"):
        sqs_fair_queue.fair_order(visible, in_flight, {"flood", None})  # an ungrouped message may be quiet


def test_sqs_fair_queue_remembers_every_group_sent(fair_queue: None) -> None:
    with mock_aws():
        backend = models.sqs_backends[ACCOUNT][REGION]
        name = flood_then_quiet(backend)
        backend.send_message(name, "alone")
        queue = backend.get_queue(name)
        assert getattr(queue, sqs_fair_queue.SENT_GROUPS) == {"flood", "quiet", None}
        # WHEN the quiet messages are received first and deleted, the flood's backlog is left
        first = backend.receive_message(name, 6, 0, 300)
        for m in first:
            backend.delete_message(name, m.receipt_handle)
        bodies = [m.body for m in backend.receive_message(name, 10, 0, 300)]
    # THEN the set only grows (it can make a receive scan, never skip a quiet message), in moto's order
    assert sorted(m.body for m in first) == sorted(["alone"] + [f"quiet {i}" for i in range(5)])
    assert bodies == [f"flood {i}" for i in range(40, 50)]


def test_sqs_fair_queue_without_the_patch_moto_serves_the_flood_first() -> None:
    # The behaviour the patch exists for: unpatched, the quiet tenant waits behind the whole backlog.
    with mock_aws():
        backend = models.sqs_backends[ACCOUNT][REGION]
        if getattr(inspect.getattr_static(models.Queue, "messages").fget, "_sluice_patch", None):
            pytest.skip("the patch is installed in this process")
        name = flood_then_quiet(backend)
        bodies = [m.body for m in backend.receive_message(name, 10, 0, 300)]
    assert bodies == [f"flood {i}" for i in range(40, 50)]


def test_every_patch_of_the_emulator_loads_after_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    # The emulator applies them in this order; a guard must not mistake an earlier patch for a mismatch.
    from local import moto_server

    saved = {
        "receive_message": models.SQSBackend.receive_message,
        "messages": inspect.getattr_static(models.Queue, "messages"),
        "attributes": inspect.getattr_static(models.Queue, "attributes"),
        "delete_message": models.Queue.delete_message,
        "unix_time_millis": models.unix_time_millis,
    }
    try:
        for patch in moto_server.PATCHES:
            patch.apply()
    finally:
        models.SQSBackend.receive_message = saved["receive_message"]  # type: ignore[method-assign]
        models.Queue.messages = saved["messages"]  # type: ignore[method-assign]
        models.Queue.attributes = saved["attributes"]  # type: ignore[method-assign]
        models.Queue.delete_message = saved["delete_message"]  # type: ignore[method-assign]
        models.unix_time_millis = saved["unix_time_millis"]


@pytest.mark.parametrize(("switch", "fair_applied"), [(None, True), ("1", False)])
def test_the_emulator_leaves_fair_queues_out_only_when_a_measurement_asks(
    monkeypatch: pytest.MonkeyPatch, switch: str | None, fair_applied: bool
) -> None:
    # loadtest.tenants --without-fair-queue measures what fair queueing changes; every other patch stays.
    import moto.server

    from local import moto_server

    applied: list[str] = []
    for patch in moto_server.PATCHES:
        monkeypatch.setattr(patch, "apply", lambda name=patch.__name__: applied.append(name))
    monkeypatch.setattr(moto.server, "main", lambda args: None)
    if switch is None:
        monkeypatch.delenv(moto_server.WITHOUT_FAIR_QUEUE, raising=False)
    else:
        monkeypatch.setenv(moto_server.WITHOUT_FAIR_QUEUE, switch)
    moto_server.main(["-p", "0"])
    assert ("local.patches.sqs_fair_queue" in applied) is fair_applied
    assert len(applied) == len(moto_server.PATCHES) - (0 if fair_applied else 1)
