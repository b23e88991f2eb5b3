"""The baseline: the simplest per-record implementation of the same job, measured by the same harness.

What a first version typically looks like: stdlib ``json``, a minimal envelope, one SendMessage and
one PutRecord per record in the ingest function, one PutItem (and one DeleteMessage, done by the
event source) per record in the worker, no partial batch response. Every figure ``make bench``
reports has a ratio against this.
"""

from __future__ import annotations

import json
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
    out = []
    for item in items:
        envelope: dict[str, Any] = {
            "v": 1,
            "kind": kind,
            "tenant_id": tenant,
            "event_id": str(uuid.uuid4()),
            "received_at": received_at,
        }
        if kind == "log":
            envelope["text"] = item
        else:
            envelope["payload"] = item
        out.append(json.dumps(envelope))
    return out


def ingest_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """API Gateway (payload 2.0) -> one SendMessage and one PutRecord per record."""
    import os

    body = (event.get("body") or "").encode()
    headers = event.get("headers") or {}
    kind = "log" if event.get("routeKey") == "POST /ingest" else "event"
    envelopes = parse_and_envelope(body, headers.get("content-type", "application/json"), kind)
    sqs, kinesis = aws.client("sqs"), aws.client("kinesis")
    for text in envelopes:
        sqs.send_message(QueueUrl=os.environ["BASELINE_QUEUE_URL"], MessageBody=text)
        kinesis.put_record(
            StreamName=os.environ["BASELINE_STREAM_NAME"], Data=text.encode(), PartitionKey=str(uuid.uuid4())
        )
    return {"statusCode": 202, "body": json.dumps({"accepted": len(envelopes)})}


def worker_handler(event: dict[str, Any], context: Any) -> None:
    """SQS -> one PutItem per record; any failure fails the whole batch."""
    import os

    ddb = aws.client("dynamodb")
    for record in event["Records"]:
        envelope = json.loads(record["body"])
        ddb.put_item(
            TableName=os.environ["BASELINE_TABLE_NAME"],
            Item={
                "tenant_id": {"S": envelope["tenant_id"]},
                "event_id": {"S": envelope["event_id"]},
                "received_at": {"S": envelope["received_at"]},
                "kind": {"S": envelope["kind"]},
                "body": {"S": json.dumps(envelope.get("payload", envelope.get("text")))},
            },
        )
