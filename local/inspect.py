"""Read-only views of a running stack (local or deployed): the one place that reads what landed.

Queue, DLQ and stream-failure depths, the stats ``python -m local stats`` prints, dead letters, the
events table's keys and items, the envelopes on the stream, the lines of the archive and the rollup's
counts. A tenant's items are read over every partition key value it may have (``core/partitions.py``):
its N is the larger of its override in the API keys table and the stack's ``TENANT_PARTITIONS``. An adapter at the edge (boto3 only here), shared by the CLI, the load tests and the tests, never
by the Locust process. Built from a local ``Stack`` (``StackInspector.for_stack``) or from plain
resource names and a region for a deployment (the default credential chain); every resource is
optional and a view needs only the ones it reads.
"""

from __future__ import annotations

import gzip
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from core.batching import chunk
from core.partitions import effective_partitions, lookup_keys, merge_by_sort_key, read_keys, tenant_of_key

if TYPE_CHECKING:
    from local.dlq import DeadLetter
    from local.stack import Stack


@dataclass(frozen=True)
class Backlog:
    visible: int
    in_flight: int
    dlq: int | None

    @property
    def total(self) -> int:
        return self.visible + self.in_flight


def _client(service: str, endpoint_url: str | None, region: str | None, read_timeout: float,
            credentials: dict[str, str] | None = None) -> Any:  # fmt: skip
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=3, read_timeout=read_timeout, retries={"mode": "standard", "max_attempts": 5}
    )
    return boto3.session.Session().client(
        service, endpoint_url=endpoint_url, region_name=region, config=config, **(credentials or {})
    )


class StackInspector:
    """Read-only views of a stack's queues, stream, tables and archive bucket.

    Clients are created on first use (or passed in: ``sqs``, ``dynamodb``, ``kinesis``, ``s3``).
    Tests raise ``read_timeout``: a full scan of a busy emulator can outlast the default.
    """

    def __init__(self, queue_url: str | None = None, dlq_url: str | None = None, table_name: str | None = None,
                 endpoint_url: str | None = None, region: str | None = None,
                 sqs: Any = None, dynamodb: Any = None, *,
                 stream_name: str | None = None, stream_failures_url: str | None = None,
                 rollup_table_name: str | None = None, archive_bucket: str | None = None,
                 kinesis: Any = None, s3: Any = None, read_timeout: float = 10.0,
                 credentials: dict[str, str] | None = None, api_keys_table_name: str | None = None,
                 default_partitions: int = 1) -> None:  # fmt: skip
        self.queue_url, self.dlq_url, self.table_name = queue_url, dlq_url, table_name
        self.stream_name, self.stream_failures_url = stream_name, stream_failures_url
        self.rollup_table_name, self.archive_bucket = rollup_table_name, archive_bucket
        self.endpoint_url, self.region = endpoint_url, region
        self.api_keys_table_name, self.default_partitions = api_keys_table_name, default_partitions
        self._read_timeout, self._credentials = read_timeout, credentials
        self._clients: dict[str, Any] = {
            name: client
            for name, client in (("sqs", sqs), ("dynamodb", dynamodb), ("kinesis", kinesis), ("s3", s3))
            if client is not None
        }

    @classmethod
    def for_stack(cls, stack: Stack, read_timeout: float = 10.0) -> StackInspector:
        """An inspector of a local stack, talking to its emulator with the emulator's dummy credentials."""
        return cls(stack.queue_url, stack.dlq_url, stack.table_name, endpoint_url=stack.endpoint_url,
                   region=stack.region, stream_name=stack.stream_name,
                   stream_failures_url=stack.stream_failures_url, rollup_table_name=stack.rollup_table_name,
                   archive_bucket=stack.archive_bucket, read_timeout=read_timeout,
                   api_keys_table_name=stack.api_keys_table_name, default_partitions=stack.tenant_partitions,
                   credentials={"aws_access_key_id": "testing", "aws_secret_access_key": "testing",
                                "aws_session_token": "testing"})  # fmt: skip

    def client(self, service: str) -> Any:
        """The inspector's boto3 client for ``service`` (created once)."""
        if service not in self._clients:
            self._clients[service] = _client(
                service, self.endpoint_url, self.region, self._read_timeout, self._credentials
            )
        return self._clients[service]

    @property
    def sqs(self) -> Any:
        return self.client("sqs") if "sqs" in self._clients or self.queue_url or self.dlq_url else None

    @property
    def ddb(self) -> Any:
        return self.client("dynamodb") if "dynamodb" in self._clients or self.table_name else None

    # --- queues -------------------------------------------------------------------------------

    def _depths(self, url: str) -> tuple[int, int]:
        attrs = self.client("sqs").get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def depth(self, url: str) -> int:
        """Messages on a queue, waiting and in flight."""
        return sum(self._depths(url))

    def backlog(self) -> Backlog:
        """Messages waiting and in flight on the queue, and everything in the DLQ."""
        visible, in_flight = self._depths(self.queue_url) if self.queue_url else (0, 0)
        dlq = self.depth(self.dlq_url) if self.dlq_url else None
        return Backlog(visible, in_flight, dlq)

    def dead_letters(self, limit: int = 10) -> list[DeadLetter]:
        """Up to ``limit`` messages of the DLQ, left there (see ``local.dlq.peek``)."""
        from local import dlq

        return dlq.peek(self.client("sqs"), str(self.dlq_url), limit)

    def stats(self) -> dict[str, int]:
        """What ``python -m local stats`` prints: the three queues' depths and the stored item count."""
        return {
            "queue_depth": self.depth(str(self.queue_url)),
            "dlq_depth": self.depth(str(self.dlq_url)),
            "stream_failures_depth": self.depth(str(self.stream_failures_url)),
            "stored_items": self.count_items(),
        }

    # --- the events table ---------------------------------------------------------------------

    def scan(self, table: str, **kwargs: Any) -> list[dict[str, Any]]:
        """Every item of ``table`` as DynamoDB returns it (typed attribute values), all pages."""
        return [item for page in self._pages(TableName=table, **kwargs) for item in page["Items"]]

    def _pages(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        ddb = self.client("dynamodb")
        while True:
            page = ddb.scan(**kwargs)
            yield page
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def count_items(self) -> int:
        """Items in the events table (a paginated COUNT scan)."""
        return sum(int(page["Count"]) for page in self._pages(TableName=self.table_name, Select="COUNT"))

    def stored_items(self) -> list[dict[str, Any]]:
        """Every item of the events table, undecoded (typed attribute values)."""
        return self.scan(str(self.table_name))

    def stored_records(self) -> list[dict[str, Any]]:
        """Every item of the events table as plain data, its body unpacked from any storage form."""
        return [stored_record_of(item) for item in self.stored_items()]

    def stored_keys(self) -> list[tuple[str, str]]:
        """``(tenant, event_id)`` of every stored item (the tenant also of an item under ``tenant#k``)."""
        items = self.scan(str(self.table_name), ProjectionExpression="tenant_id, event_id")
        return [(tenant_of_key(i["tenant_id"]["S"]), i["event_id"]["S"]) for i in items]

    def partitions_of(self, tenant_id: str) -> int:
        """The tenant's N: the larger of its override (API keys table, when known) and the stack's default."""
        override = None
        if self.api_keys_table_name:
            from ingest.apikeys import ApiKeyStore

            override = ApiKeyStore(self.api_keys_table_name, self.client("dynamodb")).partitions(tenant_id)
        return effective_partitions(override, self.default_partitions)

    def _query_key(
        self, key: str, newest_first: bool, page_size: int, **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        """The items of one partition key value in sort-key order, a page at a time as they are consumed."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "tenant_id = :t",
            "ExpressionAttributeValues": {":t": {"S": key}},
            "ScanIndexForward": not newest_first,
            "Limit": page_size,
            **kwargs,
        }
        while True:
            page = self.client("dynamodb").query(**request)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def tenant_items(self, tenant_id: str, *, newest_first: bool = True, page_size: int = 100,
                     **query: Any) -> Iterator[dict[str, Any]]:  # fmt: skip
        """A tenant's items (typed attribute values) in event id order, over every key it may be stored under.

        One query per partition key value (``core.partitions.read_keys``), merged lazily by sort key: the
        first ``limit`` items are exactly the tenant's first ``limit``, and a key is read only as far as
        the merge needs. An event id stored under two keys is yielded once. ``query``: extra Query
        parameters (``ProjectionExpression``).
        """
        keys = read_keys(tenant_id, self.partitions_of(tenant_id))
        sources = [self._query_key(k, newest_first, page_size, **query) for k in keys]
        yield from merge_by_sort_key(sources, newest_first=newest_first)

    def get_event(self, tenant_id: str, event_id: str) -> dict[str, Any] | None:
        """One stored item (typed attribute values) by tenant and event id, whichever of the tenant's keys
        holds it (``core.partitions.lookup_keys``: at most N + 1 keys, one BatchGetItem)."""
        keys = lookup_keys(tenant_id, event_id, self.partitions_of(tenant_id))
        if len(keys) == 1:
            got = self.client("dynamodb").get_item(
                TableName=self.table_name, Key={"tenant_id": {"S": keys[0]}, "event_id": {"S": event_id}}
            )
            item: dict[str, Any] | None = got.get("Item")
            return item
        items = self._batch_get([(k, event_id) for k in keys])
        return items[0] if items else None

    def count_stored(self, tenant_id: str) -> int:
        """Records stored for one tenant: a paginated COUNT query when it has one key, else its distinct
        event ids over all its keys."""
        if self.partitions_of(tenant_id) > 1:
            return sum(
                1 for _ in self.tenant_items(tenant_id, page_size=1000, ProjectionExpression="event_id")
            )
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "tenant_id = :t",
            "ExpressionAttributeValues": {":t": {"S": tenant_id}},
            "Select": "COUNT",
        }
        count = 0
        while True:
            page = self.client("dynamodb").query(**kwargs)
            count += page["Count"]
            if "LastEvaluatedKey" not in page:
                return int(count)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _batch_get(
        self, keys: Sequence[tuple[str, str]], projection: str | None = None
    ) -> list[dict[str, Any]]:
        """The items stored under ``(partition key value, event_id)`` keys, retrying unprocessed keys."""
        table = str(self.table_name)
        out: list[dict[str, Any]] = []
        for part in chunk(list(dict.fromkeys(keys)), 100):
            request: dict[str, Any] = {
                table: {
                    "Keys": [{"tenant_id": {"S": t}, "event_id": {"S": e}} for t, e in part],
                    **({"ProjectionExpression": projection} if projection else {}),
                }
            }
            for attempt in range(8):
                page = self.client("dynamodb").batch_get_item(RequestItems=request)
                out.extend(page.get("Responses", {}).get(table, []))
                request = page.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(2.0, 0.05 * 2**attempt))
        return out

    def timestamps(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[Any, Any]]:
        """``(tenant, event_id) -> (received_at, stored_at)`` for the keys that are stored (under any of
        the tenant's partition key values)."""
        wanted = list(dict.fromkeys(keys))
        partitions = {t: self.partitions_of(t) for t in {t for t, _ in wanted}}
        candidates = [(k, e) for t, e in wanted for k in lookup_keys(t, e, partitions[t])]
        found: dict[tuple[str, str], tuple[Any, Any]] = {}
        for item in self._batch_get(candidates, "tenant_id, event_id, received_at, stored_at"):
            key = (tenant_of_key(item["tenant_id"]["S"]), item["event_id"]["S"])
            found[key] = (_scalar(item.get("received_at")), _scalar(item.get("stored_at")))
        return found

    # --- the stream, the archive, the rollup --------------------------------------------------

    def stream_data(self, stream_name: str | None = None) -> list[bytes]:
        """The data of every record on the stream (or on ``stream_name``), every shard from its oldest."""
        kinesis, stream = self.client("kinesis"), stream_name or self.stream_name
        out: list[bytes] = []
        for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
            iterator = kinesis.get_shard_iterator(
                StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            while iterator:
                page = kinesis.get_records(ShardIterator=iterator, Limit=10000)
                out.extend(r["Data"] for r in page["Records"])
                if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                    break
                iterator = page.get("NextShardIterator")
        return out

    def stream_envelopes(self, stream_name: str | None = None) -> list[dict[str, Any]]:
        """Every envelope on the stream (or on ``stream_name``), decoded."""
        return [orjson.loads(data) for data in self.stream_data(stream_name)]

    def stream_ids(self, stream_name: str | None = None) -> list[str]:
        """The event ids on the stream, one per record (a record put twice appears twice)."""
        return [e["event_id"] for e in self.stream_envelopes(stream_name)]

    def archive_lines(self) -> Iterator[dict[str, Any]]:
        """Every line of every archive object (gzipped JSON lines), decoded."""
        s3, bucket = self.client("s3"), str(self.archive_bucket)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                for line in gzip.decompress(body).splitlines():
                    yield orjson.loads(line)

    def archived(self) -> Counter[str]:
        """event_id -> how many archive lines hold it."""
        return Counter(line["event_id"] for line in self.archive_lines())

    def rollup_counts(self) -> Counter[str]:
        """tenant -> records counted by the rollup (the checkpoint rows excluded)."""
        counts = Counter[str]()
        for item in self.scan(str(self.rollup_table_name)):
            if not item["tenant_id"]["S"].startswith("#"):
                counts[item["tenant_id"]["S"]] += int(item["record_count"]["N"])
        return counts


def _scalar(attr: dict[str, Any] | None) -> Any:
    if not attr:
        return None
    if "S" in attr:
        return attr["S"]
    if "N" in attr:
        return float(attr["N"])
    return None


def count_by_tenant(probe: StackInspector, tenants: Sequence[str]) -> dict[str, int]:
    """Items stored per tenant."""
    return {t: probe.count_stored(t) for t in tenants}


def stored_record_of(item: dict[str, Any]) -> dict[str, Any]:
    """One stored item (typed attribute values) as plain data, decoded where items are built."""
    from consumers.worker.items import stored_record
    from consumers.worker.store import deserialize_item

    return stored_record(deserialize_item(item))
