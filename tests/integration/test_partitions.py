"""A tenant that outgrows one partition, end to end against moto: ingest stamps the tenant's N, the worker
writes under ``tenant`` or ``tenant#k``, and every reader (the CLI's ``events list``/``get``, the
StackInspector, DLQ redrive) gets everything back in sort-key order after N is raised from 1 to 4, with
nothing lost and nothing of another tenant."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from moto import mock_aws

from consumers.worker import handler as worker
from core import envelope
from core.ids import new_event_id
from core.partitions import owns_key, partition_key
from ingest import handler as ingest
from ingest.apikeys import ApiKeyStore, PartitionsLowered
from local import cli, dlq
from local.inspect import StackInspector
from local.sources import lambda_message_attributes
from local.stack import create_table
from tests.conftest import REGION, load_event
from tests.support.fakes import LambdaContext, http_event

pytestmark = pytest.mark.integration

EVENTS, KEYS = "sluice-events", "sluice-api-keys"


class Deployment:
    """moto resources as Terraform makes them, the ingest and worker handlers wired to them, and the
    Terraform outputs file the CLI reads (``--outputs``)."""

    def __init__(self, root: Path) -> None:
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.ddb = boto3.client("dynamodb", region_name=REGION)
        kinesis = boto3.client("kinesis", region_name=REGION)
        self.queue_url = self.sqs.create_queue(QueueName="sluice-events")["QueueUrl"]
        self.dlq_url = self.sqs.create_queue(QueueName="sluice-dlq")["QueueUrl"]
        kinesis.create_stream(StreamName="sluice-events", ShardCount=1)
        create_table(self.ddb, "events", EVENTS)
        create_table(self.ddb, "api-keys", KEYS)
        self.outputs = root / "outputs.json"
        self.outputs.write_bytes(
            orjson.dumps(
                {
                    "queue_url": self.queue_url,
                    "dlq_url": self.dlq_url,
                    "stream_name": "sluice-events",
                    "table_name": EVENTS,
                    "api_keys_table_name": KEYS,
                    "region": REGION,
                    "tenant_partitions": 1,
                }
            )
        )

    def post(self, tenant: str, count: int, **headers: str) -> list[str]:
        """POST /events through the ingest handler; the accepted event ids."""
        body = orjson.dumps([{"type": "page_view", "n": i} for i in range(count)])
        response = ingest.lambda_handler(
            http_event("POST /events", body, {"x-tenant-id": tenant, **headers}), LambdaContext()
        )
        assert response["statusCode"] == 202, response["body"]
        return list(orjson.loads(response["body"])["event_ids"])

    def messages(self, queue_url: str | None = None) -> list[dict[str, Any]]:
        """Every message on the queue (received with their attributes and deleted)."""
        url = queue_url or self.queue_url
        out: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
            ).get("Messages", [])
            if not got:
                return out
            out.extend(got)
            for m in got:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def work(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The worker handler on these messages, as Lambda's SQS event carries them."""
        template = load_event("sqs_batch")["Records"][0]
        records = []
        for m in messages:
            record = copy.deepcopy(template)
            record.update(
                messageId=m["MessageId"],
                body=m["Body"],
                messageAttributes=lambda_message_attributes(m.get("MessageAttributes", {})),
            )
            records.append(record)
        response: dict[str, Any] = worker.lambda_handler({"Records": records}, LambdaContext())
        return response

    def cli(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.main(["--outputs", str(self.outputs), *argv])
        out, err = capsys.readouterr()
        return code, out, err

    def listed(self, capsys: pytest.CaptureFixture[str], tenant: str, limit: int) -> list[dict[str, Any]]:
        code, out, _ = self.cli(capsys, "events", "list", "--tenant", tenant, "--limit", str(limit), "--json")
        assert code == 0
        return [orjson.loads(line) for line in out.splitlines() if line.strip()]

    def raw_keys(self) -> list[tuple[str, str]]:
        items = StackInspector(table_name=EVENTS, dynamodb=self.ddb).scan(EVENTS)
        return [(i["tenant_id"]["S"], i["event_id"]["S"]) for i in items]


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setattr(worker.metrics, "namespace", "sluice-test")
    with mock_aws():
        d = Deployment(tmp_path)
        for name, value in {
            "QUEUE_URL": d.queue_url,
            "STREAM_NAME": "sluice-events",
            "QUOTA_TABLE_NAME": KEYS,
            "TABLE_NAME": EVENTS,
            "STORE_BUDGET_SECONDS": "2",
        }.items():
            monkeypatch.setenv(name, value)
        caches = (ingest.settings, ingest.service, ingest.quota_enforcer, ingest.tenant_partitions)
        caches += (worker.settings, worker.event_store)
        for cache in caches:
            cache.cache_clear()
        yield d
        for cache in caches:
            cache.cache_clear()


def new_container() -> None:
    """A fresh ingest container: it reads the tenant's N again (as one does within a minute)."""
    ingest.service.cache_clear()
    ingest.tenant_partitions.cache_clear()


def test_raising_a_live_tenant_from_one_to_four_partitions_loses_and_hides_nothing(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    d = deployment
    # GIVEN acme written with N = 1, and another tenant beside it
    before = d.post("acme", 30)
    other = d.post("acmeco", 5)
    first = d.messages()
    assert all("MessageAttributes" not in m for m in first)  # N = 1: the message is as it always was
    assert d.work(first)["batchItemFailures"] == []
    assert {k for k, _ in d.raw_keys()} == {"acme", "acmeco"}  # N = 1: the key is exactly the tenant id

    # WHEN its partitions are raised to 4 (through the CLI) and more is written
    code, out, _ = d.cli(capsys, "keys", "partitions", "set", "--tenant", "acme", "4")
    assert code == 0 and "acme#3" in out
    new_container()
    after = d.post("acme", 60)
    second = d.messages()
    assert {m["MessageAttributes"]["partitions"]["StringValue"] for m in second if "acme" in m["Body"]} == {
        "4"
    }
    assert d.work(second)["batchItemFailures"] == []

    # THEN the new items are spread over acme#0..3, the old ones stay under acme
    by_key: dict[str, set[str]] = {}
    for key, event_id in d.raw_keys():
        by_key.setdefault(key, set()).add(event_id)
    assert by_key["acme"] == set(before)
    assert set().union(*(by_key.get(f"acme#{k}", set()) for k in range(4))) == set(after)
    assert sum(1 for k in range(4) if by_key.get(f"acme#{k}")) >= 3  # 60 ids over 4 keys: spread
    assert all(
        key == partition_key("acme", e, 4)
        for key, ids in by_key.items()
        if key.startswith("acme#")
        for e in ids
    )
    everything = sorted(before + after, reverse=True)

    # AND events list gives every one, newest first, exactly at each limit, none of acmeco's
    for limit in (1, 7, 45, 90, 200):
        listed = d.listed(capsys, "acme", limit)
        assert [r["event_id"] for r in listed] == everything[:limit]
        assert {r["tenant_id"] for r in listed} == {"acme"}
    assert [r["event_id"] for r in d.listed(capsys, "acmeco", 50)] == sorted(other, reverse=True)

    # AND events get finds each, whichever key holds it
    for event_id in (before[0], before[-1], *after[:5]):
        code, out, _ = d.cli(capsys, "--json", "events", "get", "--tenant", "acme", event_id)
        assert (
            code == 0
            and orjson.loads(out)["event_id"] == event_id
            and orjson.loads(out)["tenant_id"] == "acme"
        )
    assert d.cli(capsys, "events", "get", "--tenant", "acme", other[0])[0] == 1

    # AND the StackInspector reads the same, oldest first too, counts and times them, and names the tenant
    probe = StackInspector(table_name=EVENTS, api_keys_table_name=KEYS, region=REGION)
    oldest_first = [i["event_id"]["S"] for i in probe.tenant_items("acme", newest_first=False, page_size=7)]
    assert oldest_first == sorted(before + after)
    assert probe.count_stored("acme") == 90 and probe.count_stored("acmeco") == 5
    assert set(probe.timestamps(("acme", e) for e in before + after)) == {("acme", e) for e in before + after}
    assert {t for t, _ in probe.stored_keys()} == {"acme", "acmeco"}
    assert {r["tenant_id"] for r in probe.stored_records()} == {"acme", "acmeco"}


def test_a_redelivered_or_redriven_message_lands_on_the_same_key(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    d = deployment
    ApiKeyStore(KEYS, client=d.ddb).set_partitions("acme", 4)
    ids = d.post("acme", 20)
    messages = d.messages()
    d.work(messages)
    stored = sorted(d.raw_keys())
    # GIVEN N raised again after the messages were stamped
    ApiKeyStore(KEYS, client=d.ddb).set_partitions("acme", 8)
    new_container()
    # WHEN the same messages are delivered again, and moved through the DLQ and redriven
    d.work(messages)
    for m in messages:
        d.sqs.send_message(
            QueueUrl=d.dlq_url, MessageBody=m["Body"], MessageAttributes=m["MessageAttributes"]
        )
    moved = list(dlq.redrive(d.sqs, d.dlq_url, d.queue_url, dry_run=False, rate_per_second=0))
    assert len(moved) == 20
    redriven = d.messages()
    assert {m["MessageAttributes"]["partitions"]["StringValue"] for m in redriven} == {"4"}
    d.work(redriven)
    # THEN no item was added: each write rewrote the item under the key its first delivery took
    assert sorted(d.raw_keys()) == stored and len(stored) == 20
    assert [r["event_id"] for r in d.listed(capsys, "acme", 50)] == sorted(ids, reverse=True)


def test_a_client_retry_after_n_changed_is_read_once(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    d = deployment
    # GIVEN a record with a client identity stored under N = 1
    ids = d.post("acme", 3, **{"idempotency-key": "batch-1"})
    d.work(d.messages())
    # WHEN N is raised and the client sends the same request again (same identity, same ids)
    ApiKeyStore(KEYS, client=d.ddb).set_partitions("acme", 4)
    new_container()
    assert d.post("acme", 3, **{"idempotency-key": "batch-1"}) == ids
    d.work(d.messages())
    # THEN the same record may sit under two keys, and every reader gives it once
    assert len(d.raw_keys()) == 6
    assert [r["event_id"] for r in d.listed(capsys, "acme", 10)] == sorted(ids, reverse=True)
    probe = StackInspector(table_name=EVENTS, api_keys_table_name=KEYS, region=REGION)
    assert probe.count_stored("acme") == 3


def test_lowering_partitions_is_refused_and_changes_nothing(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    d = deployment
    store = ApiKeyStore(KEYS, client=d.ddb)
    store.set_quota("acme", {"records": {"rate": 50}})
    assert store.set_partitions("acme", 4) == 4
    with pytest.raises(PartitionsLowered, match="has 4 partitions"):
        store.set_partitions("acme", 2)
    code, _, err = d.cli(capsys, "keys", "partitions", "set", "--tenant", "acme", "3")
    assert code == 1 and "lowering it to 3 is refused" in err
    assert d.cli(capsys, "keys", "partitions", "set", "--tenant", "acme", "65")[0] == 2
    assert store.set_partitions("acme", 4) == 4  # the same N again is fine
    store.set_quota("acme", {"records": {"burst": 100}})  # a quota change keeps the partitions
    assert store.partitions("acme") == 4 and store.quota("acme") == {
        "records": {"rate": 50.0, "burst": 100.0}
    }
    code, out, _ = d.cli(capsys, "keys", "partitions", "show", "--tenant", "acme")
    assert code == 0 and "4 partition(s)" in out
    assert "no partitions override" in d.cli(capsys, "keys", "partitions", "show", "--tenant", "zeta")[1]


def test_the_worker_cannot_be_made_to_write_into_another_tenants_keys(deployment: Deployment) -> None:
    d = deployment
    body = envelope.dumps(
        {
            "v": 1,
            "kind": "event",
            "tenant_id": "ab",
            "event_id": new_event_id(),
            "received_at": "2026-11-22T10:15:30.123456Z",
            "source": {"route": "POST /events"},
            "payload": {"n": 1},
        }
    )
    forged = [{"StringValue": v, "DataType": "Number"} for v in ("4", "64", "65", "0", "-1", "abc#1", "1e3")]
    forged.append({"StringValue": "c", "DataType": "String"})
    forged_tenant = [
        body.replace('"tenant_id":"ab"', f'"tenant_id":"{t}"') for t in ("abc#1", "ab#1", "abc*")
    ]
    messages = [
        {"MessageId": f"m{i}", "Body": body, "MessageAttributes": {"partitions": a}}
        for i, a in enumerate(forged)
    ]
    messages += [
        {
            "MessageId": f"t{i}",
            "Body": b,
            "MessageAttributes": {"partitions": {"StringValue": "4", "DataType": "Number"}},
        }
        for i, b in enumerate(forged_tenant)
    ]
    failed = {f["itemIdentifier"] for f in d.work(messages)["batchItemFailures"]}
    # Only the well-formed stamps (4, 64) of a valid tenant are stored; every other message is refused.
    assert failed == {f"m{i}" for i in range(2, len(forged))} | {f"t{i}" for i in range(len(forged_tenant))}
    assert all(owns_key("ab", key) for key, _ in d.raw_keys()) and len(d.raw_keys()) >= 1
