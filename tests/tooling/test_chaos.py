"""The chaos proxy's fault logic without sockets: faithful partial failures and protocol-correct errors.

"Faithful" is the point: an entry the proxy reports failed must not have been forwarded, and the
spliced answer must put every entry's outcome at the caller's position, or the fault tests would prove
nothing (a record reported failed but written anyway hides a lost retry; one reported written but
dropped hides a loss).
"""

from __future__ import annotations

from typing import Any

import botocore.session
import orjson
import pytest
from botocore.parsers import create_parser

from consumers.worker.items import unprocessed_item_keys
from core.batching import failed_kinesis_indexes, failed_sqs_ids
from core.errors import is_transient
from local.chaos import ChaosRules, Forward, Injector, Reply, operation_of

SESSION = botocore.session.get_session()


def parse(service: str, operation: str, reply: Reply) -> dict[str, Any]:
    """The reply as botocore's own parser for the service's protocol reads it."""
    model = SESSION.get_service_model(service)
    op = model.operation_model(operation)
    response = {"status_code": reply.status, "headers": reply.headers, "body": reply.body}
    return create_parser(model.protocol).parse(response, op.output_shape)  # type: ignore[no-any-return]


def test_operations_are_named_by_their_target_header() -> None:
    assert operation_of("POST", "/", {"x-amz-target": "Kinesis_20131202.PutRecords"}) == "kinesis:PutRecords"
    assert operation_of("POST", "/", {"x-amz-target": "AmazonSQS.SendMessageBatch"}) == "sqs:SendMessageBatch"
    assert operation_of("POST", "/", {"x-amz-target": "DynamoDB_20120810.BatchWriteItem"}) == (
        "dynamodb:BatchWriteItem"
    )
    assert operation_of("PUT", "/bucket/key", {}) == "s3:PUT"


def test_kinesis_partial_failure_forwards_only_the_survivors_and_splices_in_caller_order() -> None:
    # GIVEN a PutRecords call of 40 records and a 30 % per-record failure rule
    injector = Injector(ChaosRules(seed=7, kinesis_entry_failure=0.3))
    records = [{"Data": f"r{i}", "PartitionKey": str(i)} for i in range(40)]
    # WHEN the proxy plans the call
    plan = injector.plan("kinesis:PutRecords", orjson.dumps({"StreamName": "s", "Records": records}))
    assert isinstance(plan, Forward) and plan.failed
    forwarded = orjson.loads(plan.body)["Records"]
    # THEN exactly the records not reported failed are forwarded, in order
    assert forwarded == [r for i, r in enumerate(records) if i not in plan.failed]
    # AND the spliced answer fails exactly those positions, with the count AWS reports
    upstream = {"FailedRecordCount": 0, "Records": [{"SequenceNumber": f"seq-{r['Data']}", "ShardId": "s0"}
                                                    for r in forwarded]}  # fmt: skip
    answer = orjson.loads(injector.splice(plan, orjson.dumps(upstream)))
    assert answer["FailedRecordCount"] == len(plan.failed)
    assert [i for i, _ in failed_kinesis_indexes(answer)] == list(plan.failed)
    for i, r in enumerate(answer["Records"]):
        if i not in plan.failed:
            assert r["SequenceNumber"] == f"seq-r{i}"
    assert injector.counts["kinesis:PutRecords:entries_failed"] == len(plan.failed)


def test_sqs_failed_entries_are_not_sent_and_are_reported_retryable() -> None:
    injector = Injector(ChaosRules(seed=3, sqs_entry_failure=0.5))
    entries = [{"Id": str(i), "MessageBody": f"m{i}"} for i in range(10)]
    plan = injector.plan("sqs:SendMessageBatch", orjson.dumps({"QueueUrl": "q", "Entries": entries}))
    assert isinstance(plan, Forward) and 0 < len(plan.failed) < 10
    sent = orjson.loads(plan.body)["Entries"]
    assert {e["Id"] for e in sent}.isdisjoint(str(i) for i in plan.failed)
    upstream = {"Successful": [{"Id": e["Id"], "MessageId": "x", "MD5OfMessageBody": "y"} for e in sent]}
    answer = orjson.loads(injector.splice(plan, orjson.dumps(upstream)))
    failed = failed_sqs_ids(answer)
    assert set(failed) == {str(i) for i in plan.failed}
    assert all(not sender for _, sender in failed.values())  # not the sender's fault: retry it


def test_dynamodb_unprocessed_items_are_withheld_and_handed_back() -> None:
    injector = Injector(ChaosRules(seed=1, dynamodb_unprocessed=0.4))
    puts = [
        {"PutRequest": {"Item": {"tenant_id": {"S": "t"}, "event_id": {"S": f"e{i}"}}}} for i in range(25)
    ]
    plan = injector.plan("dynamodb:BatchWriteItem", orjson.dumps({"RequestItems": {"events": puts}}))
    assert isinstance(plan, Forward) and plan.failed
    written = {
        r["PutRequest"]["Item"]["event_id"]["S"] for r in orjson.loads(plan.body)["RequestItems"]["events"]
    }
    answer = orjson.loads(injector.splice(plan, b'{"UnprocessedItems": {}}'))
    unprocessed = {e for _, e in unprocessed_item_keys(answer, "events")}
    assert unprocessed == {f"e{i}" for i in plan.failed}
    assert written.isdisjoint(unprocessed) and written | unprocessed == {f"e{i}" for i in range(25)}


def test_a_call_whose_every_entry_fails_is_answered_without_forwarding() -> None:
    injector = Injector(ChaosRules(kinesis_entry_failure=1.0))
    plan = injector.plan(
        "kinesis:PutRecords", orjson.dumps({"StreamName": "s", "Records": [{"Data": "a"}] * 3})
    )
    assert isinstance(plan, Reply)
    answer = parse("kinesis", "PutRecords", plan)
    assert answer["FailedRecordCount"] == 3


@pytest.mark.parametrize(
    ("service", "operation", "code"),
    [
        ("kinesis", "PutRecords", "ProvisionedThroughputExceededException"),
        ("sqs", "SendMessageBatch", "RequestThrottled"),
        ("dynamodb", "BatchWriteItem", "ProvisionedThroughputExceededException"),
    ],
)
def test_whole_call_throttling_speaks_each_services_protocol(service: str, operation: str, code: str) -> None:
    injector = Injector(ChaosRules(throttle={f"{service}:{operation}": 1.0}))
    reply = injector.plan(f"{service}:{operation}", b"{}")
    assert isinstance(reply, Reply) and reply.status == 400
    error = parse(service, operation, reply)["Error"]
    # botocore reads the code we meant, and the pipeline classifies it as retryable
    assert error["Code"] == code
    assert is_transient(code)
    assert injector.counts[f"{service}:{operation}:throttled"] == 1


def test_an_outage_answers_every_call_503_until_it_ends() -> None:
    injector = Injector()
    injector.outage(60)
    reply = injector.plan("sqs:ReceiveMessage", b"{}")
    assert isinstance(reply, Reply) and reply.status == 503
    assert parse("sqs", "ReceiveMessage", reply)["Error"]["Code"] == "ServiceUnavailable"
    injector.outage(0)
    assert isinstance(injector.plan("sqs:ReceiveMessage", b"{}"), Forward)
    assert injector.counts["outage_503"] == 1


def test_the_same_seed_injects_the_same_faults() -> None:
    body = orjson.dumps({"StreamName": "s", "Records": [{"Data": str(i)} for i in range(100)]})
    runs = []
    for _ in range(2):
        injector = Injector(ChaosRules(seed=42, kinesis_entry_failure=0.2))
        runs.append([getattr(injector.plan("kinesis:PutRecords", body), "failed", None) for _ in range(5)])
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[0][1]  # and the faults differ from call to call
