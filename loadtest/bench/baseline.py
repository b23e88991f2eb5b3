"""The naive baseline ``make bench`` compares against: a first version of the same job, handlers only.

stdlib ``json``, a minimal envelope, one SendMessage and one PutRecord per record in ingest; one
PutItem per record in the worker, no partial batch response. The bench runs these behind the same
local API and SQS event source as the pipeline (``local.runtime`` with its handlers replaced).
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from typing import Any

from core import aws


def parse_and_envelope(body: bytes, content_type: str, kind: str, tenant: str = "default") -> list[str]:
    """The pure part: parse the body, wrap each record in an envelope, serialize it."""
    received_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if content_type.startswith("text/plain"):
        items: list[Any] = [line for line in body.decode().split("\n") if line.strip()]
    else:
        doc = json.loads(body)
        items = doc if isinstance(doc, list) else [doc]
    field = "text" if kind == "log" else "payload"
    return [json.dumps({"v": 1, "kind": kind, "tenant_id": tenant, "event_id": str(uuid.uuid4()),
                        "received_at": received_at, field: item}) for item in items]  # fmt: skip


def ingest_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """API Gateway (payload 2.0) -> one SendMessage and one PutRecord per record."""
    headers = event.get("headers") or {}
    kind = "log" if event.get("routeKey") == "POST /ingest" else "event"
    envelopes = parse_and_envelope((event.get("body") or "").encode(), headers.get("content-type", "application/json"),
                                   kind, headers.get("x-tenant-id", "default"))  # fmt: skip
    sqs, kinesis = aws.client("sqs"), aws.client("kinesis")
    for text in envelopes:
        sqs.send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody=text)
        kinesis.put_record(StreamName=os.environ["STREAM_NAME"], Data=text.encode(),
                           PartitionKey=str(uuid.uuid4()))  # fmt: skip
    return {"statusCode": 202, "body": json.dumps({"accepted": len(envelopes)})}


def worker_handler(event: dict[str, Any], context: Any) -> None:
    """SQS -> one PutItem per record; any failure fails the whole batch."""
    ddb = aws.client("dynamodb")
    for record in event["Records"]:
        e = json.loads(record["body"])
        ddb.put_item(TableName=os.environ["TABLE_NAME"], Item={
            "tenant_id": {"S": e["tenant_id"]}, "event_id": {"S": e["event_id"]},
            "received_at": {"S": e["received_at"]}, "kind": {"S": e["kind"]},
            "body": {"S": json.dumps(e.get("payload", e.get("text")))},
        })  # fmt: skip
