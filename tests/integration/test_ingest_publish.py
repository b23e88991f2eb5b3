"""The ingest path against moto: records land on the queue and the stream; injected failures are
retried; when the budget runs out the answer is 503, never a 202 for a record that is not on both."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import orjson
import pytest
from botocore.exceptions import ClientError

from core import envelope as env
from core.retry import Backoff
from core.settings import IngestSettings
from ingest import handler
from ingest.protocols import native
from ingest.publish import KinesisPublisher, SqsPublisher
from ingest.service import HttpRequest, IngestService
from tests.support.fakes import LambdaContext, http_event, parse_envelope

pytestmark = pytest.mark.integration
SCHEMA = jsonschema.Draft202012Validator(orjson.loads(env.SCHEMA_PATH.read_bytes()))
FAST = Backoff(base=0.001, cap=0.01, max_attempts=6)


class FlakyClient:
    """Wraps a real (moto-backed) client; fails chosen entries of the first ``times`` calls."""

    def __init__(self, real: Any, times: int, mode: str) -> None:
        self.real, self.times, self.mode, self.calls = real, times, mode, 0

    def put_records(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.times and self.mode == "throttle-call":
            raise ClientError(
                {
                    "Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "PutRecords",
            )
        if self.calls <= self.times and self.mode == "partial":
            # Fail every other record, as Kinesis does under a hot shard: only those must be resent.
            records = kwargs["Records"]
            keep = records[::2]
            response = self.real.put_records(StreamName=kwargs["StreamName"], Records=keep)
            merged, it = [], iter(response["Records"])
            for i in range(len(records)):
                merged.append(
                    next(it)
                    if i % 2 == 0
                    else {
                        "ErrorCode": "ProvisionedThroughputExceededException",
                        "ErrorMessage": "Rate exceeded",
                    }
                )
            return {"FailedRecordCount": len(records) // 2, "Records": merged}
        return self.real.put_records(**kwargs)  # type: ignore[no-any-return]

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.times and self.mode == "partial":
            entries = kwargs["Entries"]
            ok = self.real.send_message_batch(QueueUrl=kwargs["QueueUrl"], Entries=entries[:1])
            failed = [
                {"Id": e["Id"], "Code": "InternalError", "SenderFault": False, "Message": "x"}
                for e in entries[1:]
            ]
            return {"Successful": ok["Successful"], "Failed": failed}
        return self.real.send_message_batch(**kwargs)  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def quiet(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    handler.settings.cache_clear()
    handler.service.cache_clear()
    handler.quota_enforcer.cache_clear()
    yield
    handler.settings.cache_clear()
    handler.service.cache_clear()
    handler.quota_enforcer.cache_clear()


def make_service(pipeline: Any, sqs: Any = None, kinesis: Any = None, budget: str = "5") -> IngestService:
    settings = IngestSettings.from_env(
        {
            "QUEUE_URL": pipeline.queue_url,
            "STREAM_NAME": pipeline.stream_name,
            "PUBLISH_BUDGET_SECONDS": budget,
        }
    )
    return IngestService(
        settings,
        [
            SqsPublisher(settings.queue_url, client=sqs or pipeline.sqs, backoff=FAST),
            KinesisPublisher(settings.stream_name, client=kinesis or pipeline.kinesis, backoff=FAST),
        ],
    )


def ids_of(bodies: list[Any]) -> list[str]:
    return [parse_envelope(b)["event_id"] for b in bodies]


def test_handler_lands_records_on_queue_and_stream_with_a_valid_envelope(pipeline: Any) -> None:
    # GIVEN the deployed handler wired to moto through its environment
    body = orjson.dumps([{"type": "signup", "n": i, "email": "a@example.com"} for i in range(120)])
    # WHEN a batch of 120 events is posted
    response = handler.lambda_handler(
        http_event("POST /events", body, {"x-tenant-id": "acme"}), LambdaContext()
    )
    receipt = orjson.loads(response["body"])
    # THEN it is 202 and every id is on the queue and on the stream, as schema-valid envelopes
    assert response["statusCode"] == 202
    queued, streamed = pipeline.queue_bodies(), pipeline.stream_bodies()
    assert sorted(ids_of(queued)) == sorted(receipt["event_ids"]) == sorted(ids_of(streamed))
    for text in queued:
        doc = orjson.loads(text)
        SCHEMA.validate(doc)
        assert doc["tenant_id"] == "acme" and doc["source"]["route"] == "POST /events"


def test_partial_kinesis_failures_are_retried_until_every_record_is_on(pipeline: Any) -> None:
    flaky = FlakyClient(pipeline.kinesis, times=2, mode="partial")
    service = make_service(pipeline, kinesis=flaky)
    receipt = service.ingest(_request(50), "event")
    assert native.encode(receipt).status == 202 and receipt.retries > 0
    assert sorted(ids_of(pipeline.stream_bodies())) == sorted(receipt.body["event_ids"])
    assert flaky.calls == 3  # two partial answers, then the last failed entries went through


def test_partial_sqs_failures_resend_only_the_failed_entries(pipeline: Any) -> None:
    flaky = FlakyClient(pipeline.sqs, times=1, mode="partial")
    service = make_service(pipeline, sqs=flaky)
    receipt = service.ingest(_request(10), "event")
    assert native.encode(receipt).status == 202 and receipt.retries == 9
    queued = ids_of(pipeline.queue_bodies())
    assert sorted(queued) == sorted(receipt.body["event_ids"])  # each exactly once: no resend of the good one


def test_throttled_calls_are_retried(pipeline: Any) -> None:
    service = make_service(pipeline, kinesis=FlakyClient(pipeline.kinesis, times=3, mode="throttle-call"))
    assert native.encode(service.ingest(_request(5), "event")).status == 202
    assert len(pipeline.stream_bodies()) == 5


def test_budget_exhausted_is_503_never_202(pipeline: Any) -> None:
    # GIVEN a stream that keeps throttling longer than the publish budget
    service = make_service(
        pipeline, kinesis=FlakyClient(pipeline.kinesis, times=10_000, mode="throttle-call"), budget="0.2"
    )
    from ingest.problems import Problem

    # WHEN a request is ingested THEN it is 503 with Retry-After
    with pytest.raises(Problem) as info:
        service.ingest(_request(5, idempotency_key="k-1"), "event")
    assert info.value.status == 503 and "Retry-After" in info.value.headers
    # AND a retry with the same key once the stream recovers gives the same ids
    healthy = make_service(pipeline)
    receipt = healthy.ingest(_request(5, idempotency_key="k-1"), "event")
    queued = ids_of(pipeline.queue_bodies())
    assert set(queued) == set(receipt.body["event_ids"])  # the SQS copies of both attempts share the ids


def test_permanent_entry_failure_is_not_retried(pipeline: Any) -> None:
    class Refusing:
        calls = 0

        def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
            Refusing.calls += 1
            return {
                "Successful": [],
                "Failed": [
                    {"Id": e["Id"], "Code": "InvalidMessageContents", "SenderFault": True}
                    for e in kwargs["Entries"]
                ],
            }

    service = make_service(pipeline, sqs=Refusing())
    from ingest.problems import Problem

    with pytest.raises(Problem) as info:
        service.ingest(_request(3), "event")
    assert info.value.status == 503 and Refusing.calls == 1


def test_large_request_is_chunked_within_sqs_and_kinesis_limits(pipeline: Any) -> None:
    # 1,000 records of ~1 KB: 100 SendMessageBatch calls of 10, and PutRecords calls of at most 500.
    calls: dict[str, list[int]] = {"sqs": [], "kinesis": []}

    class Counting:
        def __init__(self, real: Any, name: str) -> None:
            self.real, self.name = real, name

        def send_message_batch(self, **kw: Any) -> Any:
            calls["sqs"].append(len(kw["Entries"]))
            return self.real.send_message_batch(**kw)

        def put_records(self, **kw: Any) -> Any:
            calls["kinesis"].append(len(kw["Records"]))
            return self.real.put_records(**kw)

    # A budget that in-process moto on a busy machine cannot run out of: this test is about chunking,
    # and publish now stops waiting at the deadline.
    service = make_service(
        pipeline, sqs=Counting(pipeline.sqs, "sqs"), kinesis=Counting(pipeline.kinesis, "k"), budget="120"
    )
    receipt = service.ingest(_request(1000, pad=900), "event")
    assert receipt.body["accepted"] == 1000
    assert max(calls["sqs"]) == 10 and sum(calls["sqs"]) == 1000
    assert sorted(calls["kinesis"]) == [500, 500]


def _request(n: int, idempotency_key: str | None = None, pad: int = 0) -> Any:
    from ingest.service import HttpRequest

    headers = {"content-type": "application/json"}
    if idempotency_key:
        headers["idempotency-key"] = idempotency_key
    body = orjson.dumps([{"n": i, "pad": "x" * pad} for i in range(n)]).decode()
    return HttpRequest(route="POST /events", headers=headers, body=body)


def test_each_message_names_its_tenant_as_message_group_for_sqs_fair_queues(pipeline: Any) -> None:
    # GIVEN two tenants' requests on the standard queue
    service = make_service(pipeline)
    for tenant in ("acme", "quiet"):
        request = HttpRequest(
            route="POST /events",
            headers={"content-type": "application/json", "x-tenant-id": tenant},
            body=orjson.dumps([{"n": i} for i in range(3)]).decode(),
        )
        service.ingest(request, "event")
    # THEN every message carries its record's tenant as MessageGroupId (docs/quotas.md, fair queues)
    groups: list[tuple[str, str]] = []
    while messages := pipeline.sqs.receive_message(
        QueueUrl=pipeline.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["MessageGroupId"]
    ).get("Messages", []):
        for m in messages:
            groups.append((m["Attributes"]["MessageGroupId"], orjson.loads(m["Body"])["tenant_id"]))
            pipeline.sqs.delete_message(QueueUrl=pipeline.queue_url, ReceiptHandle=m["ReceiptHandle"])
    assert len(groups) == 6 and all(group == tenant for group, tenant in groups)
