"""The local stack's resources, created in the emulator from the same wiring the Terraform reads.

Resource shapes (keys, TTL attribute, redrive) mirror ``infra/``; the wiring values themselves
(batch sizes, maxReceiveCount, visibility timeout, retention) come from ``core/wiring.json``, which
``infra/`` reads too, so the two cannot drift on them.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from core import aws, wiring
from core.settings import VARIABLES

STATE_PATH = Path(".local") / "stack.json"

# The DynamoDB tables as infra/storage.tf declares them: name suffix -> (hash key, range key, TTL attribute).
# tests/unit/test_local_drift.py reads the Terraform and fails if the two disagree.
TABLES: dict[str, tuple[str, str | None, str | None]] = {
    "events": ("tenant_id", "event_id", "expires_at"),
    "rollup": ("tenant_id", "bucket", "expires_at"),
    "api-keys": ("key_hash", None, "expires_at"),
}


@dataclass(frozen=True)
class Stack:
    """Names and URLs of one local stack, and how the handlers find them (their environment)."""

    endpoint_url: str
    region: str
    prefix: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    stream_name: str
    stream_arn: str
    stream_failures_url: str
    table_name: str
    rollup_table_name: str
    api_keys_table_name: str
    archive_bucket: str
    api_url: str = ""
    # TENANT_PARTITIONS of the stack's ingest function: what readers query for a tenant without an override.
    tenant_partitions: int = 1

    def handler_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "QUEUE_URL": self.queue_url,
            "DLQ_URL": self.dlq_url,
            "STREAM_NAME": self.stream_name,
            "TABLE_NAME": self.table_name,
            "ROLLUP_TABLE_NAME": self.rollup_table_name,
            "API_KEYS_TABLE_NAME": self.api_keys_table_name,
            "QUOTA_TABLE_NAME": self.api_keys_table_name,  # quota overrides and shared buckets
            "ARCHIVE_BUCKET": self.archive_bucket,
            "TENANT_PARTITIONS": str(self.tenant_partitions),
        }

    def save(self, path: Path = STATE_PATH) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2))

    @classmethod
    def load(cls, path: Path = STATE_PATH) -> Stack:
        if not path.exists():
            raise FileNotFoundError(f"no local stack found ({path} is missing): start one with `make run`")
        return cls(**orjson.loads(path.read_bytes()))


def use_fake_credentials() -> None:
    """The emulator accepts any credentials; never let local mode pick up real ones by accident."""
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"  # noqa: S105 - the emulator's dummy credentials
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def create_table(ddb: Any, kind: str, name: str) -> None:
    """Create the ``kind`` table of ``TABLES`` (events, rollup, api-keys) as ``name``: the one schema
    that local mode, the integration tests and the benchmarks all use, checked against the Terraform."""
    hash_key, range_key, ttl = TABLES[kind]
    _table(ddb, name, hash_key, range_key, ttl)


def _table(ddb: Any, name: str, hash_key: str, range_key: str | None = None, ttl: str | None = None) -> None:
    keys = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    attrs = [{"AttributeName": hash_key, "AttributeType": "S"}]
    if range_key:
        keys.append({"AttributeName": range_key, "KeyType": "RANGE"})
        attrs.append({"AttributeName": range_key, "AttributeType": "S"})
    try:
        ddb.create_table(
            TableName=name, KeySchema=keys, AttributeDefinitions=attrs, BillingMode="PAY_PER_REQUEST"
        )
    except ddb.exceptions.ResourceInUseException:
        return
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    if ttl:
        ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
        )


def create(endpoint_url: str, prefix: str = "sluice-local", visibility_timeout: int | None = None) -> Stack:
    """Create (or find) every resource of the pipeline in the emulator at ``endpoint_url``."""
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    w = wiring.load()
    sqs, kinesis, ddb, s3 = (aws.client(s) for s in ("sqs", "kinesis", "dynamodb", "s3"))
    visibility = visibility_timeout if visibility_timeout is not None else w.worker.visibility_timeout_seconds

    dlq_url = sqs.create_queue(
        QueueName=f"{prefix}-events-dlq",
        Attributes={"MessageRetentionPeriod": str(w.worker.dlq_message_retention_seconds)},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = orjson.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": w.worker.max_receive_count}
    ).decode()
    queue_url = sqs.create_queue(
        QueueName=f"{prefix}-events",
        Attributes={
            "VisibilityTimeout": str(visibility),
            "MessageRetentionPeriod": str(w.worker.queue_message_retention_seconds),
            "RedrivePolicy": redrive,
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    failures_url = sqs.create_queue(QueueName=f"{prefix}-stream-failures")["QueueUrl"]

    stream_name = f"{prefix}-events"
    with contextlib.suppress(kinesis.exceptions.ResourceInUseException):
        kinesis.create_stream(StreamName=stream_name, ShardCount=w.stream_shard_count)
    kinesis.get_waiter("stream_exists").wait(
        StreamName=stream_name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50}
    )
    stream_arn = kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"][
        "StreamARN"
    ]

    for kind in TABLES:
        create_table(ddb, kind, f"{prefix}-{kind}")
    table, rollup, keys = f"{prefix}-events", f"{prefix}-rollup", f"{prefix}-api-keys"
    bucket = f"{prefix}-archive"
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        s3.create_bucket(Bucket=bucket)
    return Stack(
        endpoint_url=endpoint_url,
        region=region,
        prefix=prefix,
        queue_url=queue_url,
        queue_arn=queue_arn,
        dlq_url=dlq_url,
        stream_name=stream_name,
        stream_arn=stream_arn,
        stream_failures_url=failures_url,
        table_name=table,
        rollup_table_name=rollup,
        api_keys_table_name=keys,
        archive_bucket=bucket,
        tenant_partitions=int(VARIABLES["tenant_partitions"].read(os.environ)),
    )
