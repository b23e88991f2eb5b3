"""The SQS worker against moto: partial batch failures, redelivery, redaction, whole-batch failure."""

from __future__ import annotations

import copy
import functools
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import orjson
import pytest
from moto import mock_aws

from consumers.worker import handler as worker
from core import envelope
from core.ids import new_event_id
from local.stack import create_table
from tests.conftest import REGION, load_event
from tests.support.fakes import LambdaContext

TABLE = "sluice-events-test"


def make_envelope(**overrides: Any) -> dict[str, Any]:
    env = {
        "v": 1,
        "kind": "event",
        "tenant_id": "acme",
        "event_id": new_event_id(),
        "received_at": "2026-11-22T10:15:30.123456Z",
        "type": "issues.opened",
        "client": {"event_id": "d-1"},
        "source": {"route": "POST /events", "ip": "203.0.113.7", "user_agent": "GitHub-Hookshot/abc"},
        "payload": {"issue": {"title": "help", "user": {"email": "octo.cat@example.com"}}, "score": 0.5},
    }
    env.update(overrides)
    return env


def sqs_event(bodies: list[str]) -> dict[str, Any]:
    template = load_event("sqs_batch")["Records"][0]
    records = []
    for body in bodies:
        record = copy.deepcopy(template)
        record["messageId"] = str(uuid.uuid4())
        record["body"] = body
        records.append(record)
    return {"Records": records}


def failures(response: dict[str, Any]) -> set[str]:
    return {f["itemIdentifier"] for f in response["batchItemFailures"]}


class Throttling:
    """A thin fake around the real moto client: chosen event ids come back as UnprocessedItems
    (``times`` calls in a row), or the whole call raises ProvisionedThroughputExceededException."""

    def __init__(
        self, real: Any, unprocessed: set[str] = frozenset(), times: int = 10**9, raise_all: bool = False
    ):  # type: ignore[assignment]
        self.real, self.unprocessed, self.times, self.raise_all = real, set(unprocessed), times, raise_all
        self.calls = 0

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        if self.raise_all:
            from botocore.exceptions import ClientError

            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                "BatchWriteItem",
            )
        ((table, requests),) = RequestItems.items()
        held = [r for r in requests if r["PutRequest"]["Item"]["event_id"]["S"] in self.unprocessed]
        if self.times > 0 and held:
            self.times -= 1
            kept = [r for r in requests if r not in held]
            if kept:
                self.real.batch_write_item(RequestItems={table: kept})
            return {"UnprocessedItems": {table: held}}
        return self.real.batch_write_item(RequestItems=RequestItems)  # type: ignore[no-any-return]


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.setenv("RETENTION_DAYS", "30")
    monkeypatch.setenv("STORE_BUDGET_SECONDS", "2")
    # Powertools reads its namespace when the module is imported, before the autouse env fixture runs.
    monkeypatch.setattr(worker.metrics, "namespace", "sluice-test")
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, "events", TABLE)
        worker.settings.cache_clear()
        worker.event_store.cache_clear()
        yield client
        worker.settings.cache_clear()
        worker.event_store.cache_clear()


def use_client(monkeypatch: pytest.MonkeyPatch, client: Any) -> None:
    from consumers.worker.store import DynamoEventStore

    store = DynamoEventStore(TABLE, client=client, sleep=lambda s: None)
    monkeypatch.setattr(worker, "event_store", functools.cache(lambda: store))


def stored(client: Any, tenant: str = "acme") -> list[dict[str, Any]]:
    from boto3.dynamodb.types import TypeDeserializer

    d = TypeDeserializer()
    pages = client.get_paginator("query").paginate(
        TableName=TABLE,
        KeyConditionExpression="tenant_id = :t",
        ExpressionAttributeValues={":t": {"S": tenant}},
        ConsistentRead=True,
    )
    return [{k: d.deserialize(v) for k, v in item.items()} for page in pages for item in page["Items"]]


def test_poison_and_throttled_records_are_exactly_the_batch_item_failures(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN 30 good records (two chunks of 25), two poison records, and two writes DynamoDB keeps unprocessed
    good = [make_envelope() for _ in range(30)]
    throttled_ids = {good[3]["event_id"], good[27]["event_id"]}
    fake = Throttling(dynamodb, unprocessed=throttled_ids)
    use_client(monkeypatch, fake)
    bodies = [envelope.dumps(e) for e in good] + [
        "not json {",
        orjson.dumps({"v": 1, "kind": "event"}).decode(),
    ]
    event = sqs_event(bodies)
    ids = [r["messageId"] for r in event["Records"]]

    # WHEN the worker handles the batch
    response = worker.lambda_handler(event, LambdaContext())

    # THEN exactly the poison records and the throttled writes are reported, nothing else
    assert failures(response) == {ids[3], ids[27], ids[30], ids[31]}
    assert len(stored(dynamodb)) == 28

    # WHEN SQS redelivers only the failed messages and DynamoDB has recovered
    fake.unprocessed.clear()
    retry = {"Records": [r for r in event["Records"] if r["messageId"] in failures(response)]}
    response2 = worker.lambda_handler(retry, LambdaContext())

    # THEN only the poison records fail again (they reach the DLQ after maxReceiveCount)
    assert failures(response2) == {ids[30], ids[31]}
    items = stored(dynamodb)
    assert sorted(i["event_id"] for i in items) == sorted(e["event_id"] for e in good)  # once each
    assert all(i["payload"]["issue"]["user"]["email"] == "[REDACTED:email]" for i in items)
    assert b"octo.cat@example.com" not in orjson.dumps(items, default=str)


def test_unprocessed_items_are_retried_within_the_call(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN DynamoDB hands one write back twice before accepting it
    good = [make_envelope() for _ in range(5)]
    fake = Throttling(dynamodb, unprocessed={good[0]["event_id"]}, times=2)
    use_client(monkeypatch, fake)

    # WHEN
    response = worker.lambda_handler(sqs_event([envelope.dumps(e) for e in good]), LambdaContext())

    # THEN the retry loop got it in, and no record is reported
    assert response == {"batchItemFailures": []}
    assert fake.calls == 3
    assert len(stored(dynamodb)) == 5


def test_redelivery_of_the_same_batch_rewrites_the_same_items(dynamodb: Any) -> None:
    # GIVEN a batch processed once, and the same batch again (SQS at-least-once delivery)
    bodies = [envelope.dumps(make_envelope()) for _ in range(3)]
    worker.lambda_handler(sqs_event(bodies), LambdaContext())
    # WHEN
    response = worker.lambda_handler(sqs_event(bodies), LambdaContext())
    # THEN
    assert response == {"batchItemFailures": []}
    assert len(stored(dynamodb)) == 3


def test_duplicate_event_ids_in_one_batch_are_one_write(dynamodb: Any) -> None:
    # GIVEN the same record twice in one batch (a re-sent message): DynamoDB would reject the request
    body = envelope.dumps(make_envelope())
    event = sqs_event([body, body, envelope.dumps(make_envelope())])
    # WHEN
    response = worker.lambda_handler(event, LambdaContext())
    # THEN both messages succeed with one item
    assert response == {"batchItemFailures": []}
    assert len(stored(dynamodb)) == 2


def test_whole_batch_failure_reports_every_record_instead_of_raising(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN DynamoDB throttles every call for the whole budget
    use_client(monkeypatch, Throttling(dynamodb, raise_all=True))
    event = sqs_event([envelope.dumps(make_envelope()) for _ in range(4)])
    # WHEN
    response = worker.lambda_handler(event, LambdaContext(remaining_ms=3_000))
    # THEN a normal partial response naming all of them (SQS redelivers; no BatchProcessingError)
    assert failures(response) == {r["messageId"] for r in event["Records"]}
    assert stored(dynamodb) == []


def test_an_all_poison_batch_is_reported_not_raised(dynamodb: Any) -> None:
    event = sqs_event(["[]", "{}"])
    response = worker.lambda_handler(event, LambdaContext())
    assert failures(response) == {r["messageId"] for r in event["Records"]}


def test_permanent_failures_are_counted_per_code_and_in_total(
    dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN poison records (the total is what the deployed alarm watches: alarms cannot SEARCH)
    worker.lambda_handler(sqs_event(["[]", "{}"]), LambdaContext())
    # THEN the flushed EMF document carries the per-code metric and a total of 2
    docs = [orjson.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    values = {k: v for doc in docs for k, v in doc.items() if k.startswith("PermanentFailures")}

    def total(v: Any) -> float:
        return float(sum(v)) if isinstance(v, list) else float(v)

    assert total(values["PermanentFailures"]) == 2
    assert total(values["PermanentFailures_invalid_envelope"]) == 2


def test_stored_item_shape(dynamodb: Any) -> None:
    # GIVEN an event and a log
    ev = make_envelope()
    log = make_envelope(
        kind="log",
        type=None,
        text="login ok for bob@example.org password=hunter2",
        level="info",
        attributes={"n": 1.25},
    )
    del log["payload"]
    # WHEN
    worker.lambda_handler(sqs_event([envelope.dumps(ev), envelope.dumps(log)]), LambdaContext())
    # THEN
    items = {i["event_id"]: i for i in stored(dynamodb)}
    e, g = items[ev["event_id"]], items[log["event_id"]]
    assert e["kind"] == "event"
    assert e["type"] == "issues.opened"
    assert e["storage"] == "native"
    assert e["payload"]["score"] == pytest.approx(0.5)
    assert e["source"]["ip"] == "203.0.113.7"  # IPs are kept unless REDACT_IP_ADDRESSES
    assert e["expires_at"] == 1795342530 + 30 * 86400  # 2026-11-22T10:15:30Z + RETENTION_DAYS
    assert g["text"] == "login ok for [REDACTED:email] password=[REDACTED:credential]"
    assert g["level"] == "info"
    assert "type" not in g
    assert "payload" not in g
