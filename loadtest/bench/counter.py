"""Counting AWS requests, bytes and billing units with botocore event hooks.

``AwsCallCounter.attach(client)`` registers on the client's own event system, so it sees every call
made through that client (the handlers' and the local event sources' alike), with the parameters as
sent: enough to compute each call's billing units without reading the wire.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from loadtest import cost


@dataclass
class CallStats:
    """Totals for one service operation."""

    calls: int = 0
    request_bytes: int = 0
    units: int = 0  # the operation's billing units (see ``_units``)
    records: int = 0  # entries/records/items carried
    empty: int = 0  # receives that returned nothing


def _puts(params: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        w["PutRequest"]["Item"] for ws in params["RequestItems"].values() for w in ws if "PutRequest" in w
    ]


def _kinesis_size(record: dict[str, Any]) -> int:
    # A record's size is its data blob plus its partition key (the 1 MB record limit counts both).
    data = record["Data"]
    return len(data.encode() if isinstance(data, str) else data) + len(record["PartitionKey"].encode())


def _units(service: str, operation: str, params: dict[str, Any]) -> tuple[int, int]:
    """(billing units, records carried) for one call, from the parameters as sent."""
    match service, operation:
        case "sqs", "SendMessageBatch":
            size = sum(len(e["MessageBody"].encode()) for e in params["Entries"])
            return cost.sqs_requests(size), len(params["Entries"])
        case "sqs", "SendMessage":
            return cost.sqs_requests(len(params["MessageBody"].encode())), 1
        case "sqs", "DeleteMessageBatch":
            return 1, len(params["Entries"])
        case "sqs", "ReceiveMessage":
            return 0, 0  # sized after the call, from what it returned
        case "sqs", _:
            return 1, 1 if operation == "DeleteMessage" else 0
        case "kinesis", "PutRecords":
            return sum(cost.kinesis_put_units(_kinesis_size(r)) for r in params["Records"]), len(
                params["Records"]
            )
        case "kinesis", "PutRecord":
            return cost.kinesis_put_units(_kinesis_size(params)), 1
        case "dynamodb", "BatchWriteItem":
            items = _puts(params)
            deletes = sum(1 for ws in params["RequestItems"].values() for w in ws if "DeleteRequest" in w)
            return sum(cost.dynamodb_wru(cost.dynamodb_item_size(i)) for i in items) + deletes, len(items)
        case "dynamodb", "PutItem":
            return cost.dynamodb_wru(cost.dynamodb_item_size(params["Item"])), 1
        case "dynamodb", "UpdateItem" | "DeleteItem":
            return 1, 1  # at least one WRU; the item's size after the update is not known here
        case "dynamodb", "TransactWriteItems":
            return 2 * len(params["TransactItems"]), len(params["TransactItems"])
        case "s3", "PutObject" | "CopyObject" | "ListObjectsV2" | "ListObjects":
            return 1, 1
    return 0, 0


@dataclass
class AwsCallCounter:
    """Thread-safe per-operation totals, keyed ``"sqs.SendMessageBatch"``."""

    ops: dict[str, CallStats] = field(default_factory=lambda: defaultdict(CallStats))
    item_bytes: Counter[str] = field(default_factory=Counter)  # DynamoDB item sizes written, per table
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _hooks(self, client: Any) -> list[tuple[str, Any, str]]:
        service = client.meta.service_model.service_name
        return [(f"{event}.{service}", hook, f"bench-{event}-{id(self)}") for event, hook in
                (("before-parameter-build", self._before), ("before-call", self._sized), ("after-call", self._after))]  # fmt: skip

    def attach(self, client: Any) -> None:
        for event, hook, unique_id in self._hooks(client):
            client.meta.events.register(event, hook, unique_id=unique_id)

    def detach(self, client: Any) -> None:
        for event, _, unique_id in self._hooks(client):
            client.meta.events.unregister(event, unique_id=unique_id)

    def _before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        """``before-parameter-build``: the call's own parameters, before serialization."""
        service = model.service_model.service_name
        units, records = _units(service, model.name, params)
        with self._lock:
            stats = self.ops[f"{service}.{model.name}"]
            stats.calls += 1
            stats.units += units
            stats.records += records
            if service == "dynamodb" and model.name == "BatchWriteItem":
                for table, writes in params["RequestItems"].items():
                    self.item_bytes[table] += sum(
                        cost.dynamodb_item_size(i) for i in _puts({"RequestItems": {table: writes}})
                    )

    def _sized(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        """``before-call``: ``params`` is the serialized request here; count its body bytes."""
        body = params.get("body") or b""
        with self._lock:
            self.ops[f"{model.service_model.service_name}.{model.name}"].request_bytes += (
                len(body) if isinstance(body, bytes | str) else 0)  # fmt: skip

    def _after(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        if model.name != "ReceiveMessage":
            return
        messages = parsed.get("Messages") or []
        size = sum(len(m.get("Body", "").encode()) for m in messages)
        with self._lock:
            stats = self.ops["sqs.ReceiveMessage"]
            stats.units += cost.sqs_requests(size) if messages else 1
            stats.records += len(messages)
            stats.empty += 0 if messages else 1

    def reset(self) -> None:
        with self._lock:
            self.ops.clear()
            self.item_bytes.clear()

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {k: dict(v.__dict__) for k, v in sorted(self.ops.items())}
