"""Event ids: server ids are UUIDv7 and increasing, derived ids are stable UUIDv5."""

from __future__ import annotations

import uuid

from core.ids import derive_event_id, event_id_time_ms, new_event_id, new_event_ids


def test_server_ids_are_uuid7_and_strictly_increasing() -> None:
    ids = [new_event_id() for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 7 for i in ids)
    assert event_id_time_ms(ids[0]) is not None


def test_batched_server_ids_continue_the_same_sequence() -> None:
    # GIVEN single ids and batches interleaved, one batch longer than a millisecond's 4,096 counters
    ids = [new_event_id(), *new_event_ids(3), new_event_id(), *new_event_ids(5000), new_event_id()]
    # THEN every id is a canonical UUIDv7, all distinct, strictly increasing across both functions
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 7 and parsed.variant == uuid.RFC_4122
    # AND the batch borrowed later milliseconds instead of wrapping its counter
    times = [event_id_time_ms(i) for i in ids]
    assert times == sorted(times) and times[-1] > times[0]  # type: ignore[type-var]
    assert new_event_ids(0) == []


def test_derived_ids_are_stable_uuid5() -> None:
    a = derive_event_id("acme", "event", "delivery-1#0")
    assert a == derive_event_id("acme", "event", "delivery-1#0")
    assert uuid.UUID(a).version == 5 and event_id_time_ms(a) is None


def test_ids_from_many_threads_are_unique_and_increasing_per_thread() -> None:
    # The sequence number used to be read after the lock was released: two threads could share it.
    import threading

    results: list[list[str]] = [[] for _ in range(8)]

    def make(slot: list[str]) -> None:
        slot.extend(new_event_id() for _ in range(3000))

    threads = [threading.Thread(target=make, args=(r,)) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for r in results for i in r]
    assert len(set(every)) == len(every)
    assert all(r == sorted(r) for r in results)


def test_server_ids_are_canonical_uuidv7_text() -> None:
    # new_event_id formats the UUID text itself: it must be exactly what the uuid module would print.
    for _ in range(2000):
        text = new_event_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert event_id_time_ms(text) is not None


def test_webhook_ids_live_in_their_own_namespace_under_their_source() -> None:
    from core.ids import derive_webhook_event_id

    webhook = derive_webhook_event_id("acme", "gh", "d-1#0")
    assert webhook == derive_webhook_event_id("acme", "gh", "d-1#0")
    assert webhook != derive_event_id("acme", "event", "d-1#0")
    assert webhook != derive_webhook_event_id("acme", "other", "d-1#0")
    assert webhook != derive_webhook_event_id("globex", "gh", "d-1#0")


def test_producer_derived_ids_are_unchanged() -> None:
    # Stored records must keep matching retries: these values were derived before webhooks got a namespace.
    assert derive_event_id("acme", "event", "delivery-1#0") == PINNED_PRODUCER_ID


PINNED_PRODUCER_ID = "410b2b06-7ff8-5751-a672-50695d169d39"
