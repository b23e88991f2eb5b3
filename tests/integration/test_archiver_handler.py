"""The archiver against moto S3: deterministic objects, exact after a repeated and a partial redelivery."""

from __future__ import annotations

import base64
import copy
import functools
import gzip
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import orjson
import pytest
from moto import mock_aws

from consumers.archiver import handler as archiver
from consumers.archiver.store import S3Archive
from core import envelope
from core.ids import new_event_id
from tests.conftest import REGION, load_event
from tests.support.fakes import LambdaContext

BUCKET = "sluice-archive-test"
BASE_SEQ = 49590338271490256608559692538361571095921575989136588898


def make_envelope(tenant: str, received_at: str, **extra: Any) -> dict[str, Any]:
    return {
        "v": 1,
        "kind": "event",
        "tenant_id": tenant,
        "event_id": new_event_id(),
        "received_at": received_at,
        "type": "push",
        "source": {"route": "POST /events"},
        "payload": {"pusher": {"email": "someone@example.com"}, **extra},
    }


def kinesis_event(datas: list[bytes], first: int = 0) -> dict[str, Any]:
    template = load_event("kinesis_batch")["Records"][0]
    records = []
    for n, data in enumerate(datas):
        seq = str(BASE_SEQ + first + n)
        record = copy.deepcopy(template)
        record["kinesis"]["sequenceNumber"] = seq
        record["kinesis"]["data"] = base64.b64encode(data).decode()
        record["eventID"] = f"shardId-000000000000:{seq}"
        records.append(record)
    return {"Records": records}


def failed(response: dict[str, Any]) -> list[str]:
    return sorted((f["itemIdentifier"] for f in response["batchItemFailures"]), key=int)


class FlakyArchive(S3Archive):
    """The real adapter over moto, failing puts whose key contains ``fail_on`` while it is set."""

    fail_on: str | None = None

    def put(self, key: str, body: bytes) -> None:
        if self.fail_on and self.fail_on in key:
            raise RuntimeError("S3 unavailable")
        super().put(key, body)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, FlakyArchive]]:
    monkeypatch.setenv("ARCHIVE_BUCKET", BUCKET)
    monkeypatch.setattr(archiver.metrics, "namespace", "sluice-test")
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        store = FlakyArchive(BUCKET, client=client)
        archiver.settings.cache_clear()
        monkeypatch.setattr(archiver, "archive", functools.cache(lambda: store))
        yield client, store
        archiver.settings.cache_clear()


def archived(client: Any) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        body = client.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
        out[obj["Key"]] = [orjson.loads(line) for line in gzip.decompress(body).splitlines()]
    return out


def event_ids(objects: dict[str, list[dict[str, Any]]]) -> Counter[str]:
    return Counter(rec["event_id"] for lines in objects.values() for rec in lines)


# Interleaved groups: acme 10h, globex 10h, acme 11h, so a failure cuts through earlier groups.
TIMES = ["2026-11-22T10:01:00.000000Z", "2026-11-22T10:02:00.000000Z", "2026-11-22T11:03:00.000000Z"]


def batch_of(n: int) -> list[dict[str, Any]]:
    return [make_envelope(("acme", "globex")[i % 2], TIMES[i % 3]) for i in range(n)]


def test_layout_keys_and_redaction(s3: tuple[Any, FlakyArchive]) -> None:
    client, _ = s3
    envs = batch_of(6)
    response = archiver.lambda_handler(
        kinesis_event([envelope.dumps(e).encode() for e in envs]), LambdaContext(remaining_ms=60_000)
    )
    assert response == {"batchItemFailures": []}
    objects = archived(client)
    assert sorted(objects) == sorted(
        [
            f"tenant=acme/dt=2026-11-22/hour=10/shardId-000000000000-{BASE_SEQ}.ndjson.gz",
            f"tenant=globex/dt=2026-11-22/hour=10/shardId-000000000000-{BASE_SEQ + 1}.ndjson.gz",
            f"tenant=globex/dt=2026-11-22/hour=11/shardId-000000000000-{BASE_SEQ + 5}.ndjson.gz",
            f"tenant=acme/dt=2026-11-22/hour=11/shardId-000000000000-{BASE_SEQ + 2}.ndjson.gz",
        ]
    )
    assert event_ids(objects) == Counter(e["event_id"] for e in envs)
    assert b"someone@example.com" not in orjson.dumps(objects)
    head = client.head_object(Bucket=BUCKET, Key=next(iter(objects)))
    assert head["ContentEncoding"] == "gzip"


def test_same_batch_twice_overwrites_with_identical_bytes(s3: tuple[Any, FlakyArchive]) -> None:
    client, _ = s3
    event = kinesis_event([envelope.dumps(e).encode() for e in batch_of(9)])
    archiver.lambda_handler(event, LambdaContext(remaining_ms=60_000))
    first = {k: client.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in archived(client)}
    archiver.lambda_handler(event, LambdaContext(remaining_ms=60_000))
    second = {k: client.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in archived(client)}
    assert first == second
    assert sum(event_ids(archived(client)).values()) == 9


def test_partial_failure_then_redelivery_from_the_checkpoint_is_exact(s3: tuple[Any, FlakyArchive]) -> None:
    # GIVEN the acme/11h group (first record at position 2) cannot be written
    client, store = s3
    envs = batch_of(9)
    datas = [envelope.dumps(e).encode() for e in envs] + [b"not json"]
    event = kinesis_event(datas)
    store.fail_on = "tenant=acme/dt=2026-11-22/hour=11"

    # WHEN
    response = archiver.lambda_handler(event, LambdaContext(remaining_ms=60_000))

    # THEN the failed record and every later one are reported (Lambda checkpoints at the lowest)
    seqs = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
    assert failed(response) == seqs[2:]
    # and the groups that started earlier were cut back to their records before the failure
    assert event_ids(archived(client)) == Counter([envs[0]["event_id"], envs[1]["event_id"]])

    # WHEN Lambda redelivers from the checkpoint, S3 healthy again, with a bigger batch
    store.fail_on = None
    more = batch_of(3)
    redelivery = kinesis_event(datas[2:] + [envelope.dumps(e).encode() for e in more], first=2)
    assert archiver.lambda_handler(redelivery, LambdaContext(remaining_ms=60_000)) == {
        "batchItemFailures": []
    }

    # THEN every record is archived exactly once
    assert event_ids(archived(client)) == Counter(e["event_id"] for e in envs + more)


def test_duplicate_event_id_in_a_batch_is_archived_once(s3: tuple[Any, FlakyArchive]) -> None:
    client, _ = s3
    env = batch_of(1)[0]
    archiver.lambda_handler(
        kinesis_event([envelope.dumps(env).encode()] * 2), LambdaContext(remaining_ms=60_000)
    )
    assert event_ids(archived(client)) == Counter([env["event_id"]])
