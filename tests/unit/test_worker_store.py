"""The BatchWriteItem loop against an in-memory fake client: chunks, retries, failure mapping."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from consumers.worker.store import DynamoEventStore
from core.errors import PermanentError, TransientError
from core.retry import Backoff, Deadline

TABLE = "events"


def item(n: int) -> dict[str, Any]:
    return {"tenant_id": "acme", "event_id": f"e{n:03d}", "n": n}


class FakeDynamo:
    """Records each call; ``script`` decides each call's answer from its requests."""

    def __init__(self, script: Any = None) -> None:
        self.calls: list[list[str]] = []
        self.stored: dict[str, dict[str, Any]] = {}
        self.script = script or (lambda call, reqs: None)

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        requests = RequestItems[TABLE]
        ids = [r["PutRequest"]["Item"]["event_id"]["S"] for r in requests]
        assert len(requests) <= 25
        assert len(set(ids)) == len(ids), "DynamoDB rejects duplicate keys in one request"
        self.calls.append(ids)
        held = self.script(len(self.calls), requests)
        if isinstance(held, Exception):
            raise held
        held = held or []
        for r in requests:
            if r not in held:
                self.stored[r["PutRequest"]["Item"]["event_id"]["S"]] = r["PutRequest"]["Item"]
        return {"UnprocessedItems": {TABLE: held} if held else {}}


def store(fake: FakeDynamo, attempts: int = 8, parallel: int = 1) -> DynamoEventStore:
    # One chunk at a time by default, so that scripts keyed by call number see a fixed order.
    return DynamoEventStore(
        TABLE, client=fake, backoff=Backoff(max_attempts=attempts), sleep=lambda s: None, parallel=parallel
    )


def error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "BatchWriteItem",
    )


def test_writes_in_chunks_of_25() -> None:
    fake = FakeDynamo()
    report = store(fake).put_items([item(n) for n in range(60)], Deadline(5))
    assert [len(c) for c in fake.calls] == [25, 25, 10]
    assert report.failures == {}
    assert len(fake.stored) == 60


def test_unprocessed_items_are_retried_until_written() -> None:
    # GIVEN the first two calls hand back e003 and e004
    def script(call: int, requests: list[dict[str, Any]]) -> Any:
        return (
            [r for r in requests if r["PutRequest"]["Item"]["event_id"]["S"] in {"e003", "e004"}]
            if call <= 2
            else None
        )

    fake = FakeDynamo(script)
    report = store(fake).put_items([item(n) for n in range(10)], Deadline(5))
    assert fake.calls[1:] == [["e003", "e004"], ["e003", "e004"]]
    assert report.failures == {}
    assert report.unprocessed_retries == 4
    assert len(fake.stored) == 10


def test_items_still_unprocessed_after_the_attempts_are_transient_failures() -> None:
    def script(call: int, requests: list[dict[str, Any]]) -> Any:
        return [r for r in requests if r["PutRequest"]["Item"]["event_id"]["S"] == "e030"]

    fake = FakeDynamo(script)
    report = store(fake, attempts=3).put_items([item(n) for n in range(40)], Deadline(5))
    assert list(report.failures) == [("acme", "e030")]
    assert isinstance(report.failures[("acme", "e030")], TransientError)
    assert len(fake.stored) == 39


def test_an_expired_budget_stops_retrying() -> None:
    fake = FakeDynamo(lambda call, reqs: error("ProvisionedThroughputExceededException"))
    report = store(fake).put_items([item(n) for n in range(3)], Deadline(0))
    assert len(fake.calls) == 1
    assert set(report.failures) == {("acme", "e000"), ("acme", "e001"), ("acme", "e002")}
    assert report.throttled_calls == 1


def test_a_permanent_error_is_bisected_down_to_the_bad_item() -> None:
    def script(call: int, requests: list[dict[str, Any]]) -> Any:
        ids = {r["PutRequest"]["Item"]["event_id"]["S"] for r in requests}
        return error("ValidationException") if "e007" in ids else None

    fake = FakeDynamo(script)
    report = store(fake).put_items([item(n) for n in range(25)], Deadline(5))
    assert list(report.failures) == [("acme", "e007")]
    failure = report.failures[("acme", "e007")]
    assert isinstance(failure, PermanentError)
    assert failure.code == "ValidationException"
    assert len(fake.stored) == 24
    assert len(fake.calls) <= 1 + 2 * 5  # log2(25) levels of halves


def test_5xx_is_transient() -> None:
    fake = FakeDynamo(lambda call, reqs: error("InternalServerError", 500) if call == 1 else None)
    report = store(fake).put_items([item(1)], Deadline(5))
    assert report.failures == {}
    assert report.throttled_calls == 1


def test_chunks_written_in_parallel_report_exactly_what_failed() -> None:
    # GIVEN 100 items written four chunks at a time, where DynamoDB never takes e007 (unprocessed every
    # time) and refuses e042 as invalid, decided by key so that call order does not matter
    def script(call: int, requests: list[dict[str, Any]]) -> Any:
        ids = {r["PutRequest"]["Item"]["event_id"]["S"] for r in requests}
        if "e042" in ids:
            return error("ValidationException")
        return [r for r in requests if r["PutRequest"]["Item"]["event_id"]["S"] == "e007"]

    fake = FakeDynamo(script)
    # WHEN they are written
    report = store(fake, attempts=3, parallel=4).put_items([item(n) for n in range(100)], Deadline(5))
    # THEN every other item is stored, and the report names exactly the two failures with their kind
    assert sorted(fake.stored) == [f"e{n:03d}" for n in range(100) if n not in (7, 42)]
    assert {key[1]: type(exc) for key, exc in report.failures.items()} == {
        "e007": TransientError,
        "e042": PermanentError,
    }
    assert report.unprocessed_retries == 3  # e007 was held back on each of its 3 attempts
    assert all(len(c) <= 25 for c in fake.calls)
