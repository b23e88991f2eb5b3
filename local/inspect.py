"""Read-only views of a running stack (local or deployed): queue and DLQ depths, stored counts, timestamps.

An adapter at the edge (boto3 only here), shared by the CLI, the load tests and the tests, never
by the Locust process. Works the same against the local emulator (``endpoint_url``) and a deployment
(the default credential chain).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from core.batching import chunk


@dataclass(frozen=True)
class Backlog:
    visible: int
    in_flight: int
    dlq: int | None

    @property
    def total(self) -> int:
        return self.visible + self.in_flight


def _client(service: str, endpoint_url: str | None, region: str | None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 5})
    return boto3.session.Session().client(
        service, endpoint_url=endpoint_url, region_name=region, config=config
    )


class StackInspector:
    """Read-only views of a stack's queue, dead-letter queue and events table."""

    def __init__(self, queue_url: str | None, dlq_url: str | None, table_name: str | None,
                 endpoint_url: str | None = None, region: str | None = None,
                 sqs: Any = None, dynamodb: Any = None) -> None:  # fmt: skip
        self.queue_url, self.dlq_url, self.table_name = queue_url, dlq_url, table_name
        self.sqs: Any = sqs or (_client("sqs", endpoint_url, region) if queue_url or dlq_url else None)
        self.ddb: Any = dynamodb or (_client("dynamodb", endpoint_url, region) if table_name else None)

    def _depths(self, url: str) -> tuple[int, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def backlog(self) -> Backlog:
        """Messages waiting and in flight on the queue, and everything in the DLQ."""
        visible, in_flight = self._depths(self.queue_url) if self.queue_url else (0, 0)
        dlq = sum(self._depths(self.dlq_url)) if self.dlq_url else None
        return Backlog(visible, in_flight, dlq)

    def count_stored(self, tenant_id: str) -> int:
        """Items stored for one tenant (a paginated COUNT query on the partition)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "tenant_id = :t",
            "ExpressionAttributeValues": {":t": {"S": tenant_id}},
            "Select": "COUNT",
        }
        count = 0
        while True:
            page = self.ddb.query(**kwargs)
            count += page["Count"]
            if "LastEvaluatedKey" not in page:
                return int(count)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def timestamps(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[Any, Any]]:
        """``(tenant, event_id) -> (received_at, stored_at)`` for the keys that are stored."""
        found: dict[tuple[str, str], tuple[Any, Any]] = {}
        table = str(self.table_name)
        for part in chunk(list(dict.fromkeys(keys)), 100):
            request: dict[str, Any] = {
                table: {
                    "Keys": [{"tenant_id": {"S": t}, "event_id": {"S": e}} for t, e in part],
                    "ProjectionExpression": "tenant_id, event_id, received_at, stored_at",
                }
            }
            for attempt in range(8):
                page = self.ddb.batch_get_item(RequestItems=request)
                for item in page.get("Responses", {}).get(table, []):
                    key = (item["tenant_id"]["S"], item["event_id"]["S"])
                    found[key] = (_scalar(item.get("received_at")), _scalar(item.get("stored_at")))
                request = page.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(2.0, 0.05 * 2**attempt))
        return found


def _scalar(attr: dict[str, Any] | None) -> Any:
    if not attr:
        return None
    if "S" in attr:
        return attr["S"]
    if "N" in attr:
        return float(attr["N"])
    return None


def count_by_tenant(probe: StackInspector, tenants: Sequence[str]) -> dict[str, int]:
    return {t: probe.count_stored(t) for t in tenants}
