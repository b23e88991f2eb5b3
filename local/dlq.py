"""Inspecting and redriving the dead-letter queue: dry run first, idempotent, rate-limited."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receive_count: int
    tenant_id: str | None
    event_id: str | None
    kind: str | None
    preview: str


def describe(body: str) -> tuple[str | None, str | None, str | None]:
    """(tenant, event id, kind) of a message body when it is an envelope; Nones for poison."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None, None
    if not isinstance(doc, dict):
        return None, None, None
    return doc.get("tenant_id"), doc.get("event_id"), doc.get("kind")


def peek(sqs: Any, dlq_url: str, limit: int = 10) -> list[DeadLetter]:
    """Up to ``limit`` dead letters, made visible again at once (visibility timeout 0)."""
    out: list[DeadLetter] = []
    seen: set[str] = set()
    while len(out) < limit:
        got = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=min(10, limit - len(out)),
                                  VisibilityTimeout=0, AttributeNames=["ApproximateReceiveCount"]).get("Messages", [])  # fmt: skip
        fresh = [m for m in got if m["MessageId"] not in seen]
        if not fresh:
            break
        for m in fresh:
            seen.add(m["MessageId"])
            tenant, event_id, kind = describe(m["Body"])
            count = int(m.get("Attributes", {}).get("ApproximateReceiveCount", 0))
            out.append(DeadLetter(m["MessageId"], count, tenant, event_id, kind, m["Body"][:120]))
    return out


def redrive(sqs: Any, dlq_url: str, target_url: str, *, dry_run: bool = True, rate_per_second: float = 50.0,
            max_messages: int | None = None) -> Iterator[tuple[str, str]]:  # fmt: skip
    """Move dead letters back to ``target_url``; yields ("would move"|"moved", message id).

    Each message is deleted from the DLQ only after it is on the target queue, so an interrupted run
    loses nothing; a message moved twice is harmless because the worker's writes are idempotent.
    A message goes back with its message attributes (the ``partitions`` ingest stamped on it, so the
    worker writes under the key it would have the first time) and its message group (its tenant).
    """
    moved = 0
    interval = 1.0 / rate_per_second if rate_per_second > 0 else 0.0
    seen: set[str] = set()
    while max_messages is None or moved < max_messages:
        batch = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0 if dry_run else 30,
                                    MessageAttributeNames=["All"],
                                    AttributeNames=["MessageGroupId"]).get("Messages", [])  # fmt: skip
        batch = [m for m in batch if m["MessageId"] not in seen]
        if not batch:
            return
        for m in batch:
            if max_messages is not None and moved >= max_messages:
                return
            seen.add(m["MessageId"])
            if dry_run:
                yield "would move", m["MessageId"]
            else:
                group = m.get("Attributes", {}).get("MessageGroupId")
                sqs.send_message(QueueUrl=target_url, MessageBody=m["Body"],
                                 **({"MessageAttributes": m["MessageAttributes"]} if m.get("MessageAttributes") else {}),
                                 **({"MessageGroupId": group} if group else {}))  # fmt: skip
                sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=m["ReceiptHandle"])
                yield "moved", m["MessageId"]
                time.sleep(interval)
            moved += 1
