"""The rollup's storage adapter: ``DynamoRollupStore`` behind the ``RollupStore`` port of
``consumers.rollup.counters``."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from core import aws
from core.errors import error_code
from core.retry import Backoff

CHECKPOINT_TENANT = "#checkpoint"  # not a valid tenant id (core.tenancy), so it cannot collide with one
# Seen markers live under "#seen#<tenant>" (not a tenant id either): a query of a tenant's counters, and
# the tenant reader role's leading-key condition, never meet them. Sort key: the event id.
SEEN_PREFIX = "#seen#"
BATCH_GET_MAX_KEYS = 100  # BatchGetItem limit
_BATCH_GET_ATTEMPTS = 5
# Shards of one stream update the same (tenant, minute, kind) counters at the same moment; DynamoDB
# cancels one of two overlapping transactions (TransactionConflict). Retried here, with full jitter, so
# the conflict neither fails the batch nor eats the mapping's maximum_retry_attempts.
CONFLICT_BACKOFF = Backoff(base=0.02, cap=0.5, max_attempts=8)


def is_transaction_conflict(exc: BaseException) -> bool:
    """True when a transaction was cancelled only because another one touched its items at the same time
    (retrying it unchanged can succeed); False for a failed condition, throttling or anything else."""
    if error_code(exc) != "TransactionCanceledException":
        return False
    codes = [r.get("Code") for r in getattr(exc, "response", {}).get("CancellationReasons", [])]
    return "TransactionConflict" in codes and all(c in (None, "None", "TransactionConflict") for c in codes)


def seen_key(tenant_id: str, event_id: str) -> dict[str, Any]:
    """The rollup table key of the seen marker of (tenant, event_id)."""
    return {"tenant_id": {"S": SEEN_PREFIX + tenant_id}, "bucket": {"S": event_id}}


class DynamoRollupStore:
    """Counters and the per-shard checkpoint in the rollup table, applied in one TransactWriteItems
    (retried with jitter when another shard's transaction conflicts with it)."""

    def __init__(
        self,
        table_name: str,
        client: Any = None,
        backoff: Backoff = CONFLICT_BACKOFF,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table_name = table_name
        self._client = client
        self.backoff = backoff
        self._sleep = sleep
        self.conflicts = 0  # transactions retried after a TransactionConflict

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("dynamodb")
        return self._client

    def read_checkpoint(self, shard_key: str) -> str | None:
        response = self.client.get_item(
            TableName=self.table_name,
            Key={"tenant_id": {"S": CHECKPOINT_TENANT}, "bucket": {"S": shard_key}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return None if item is None else str(item["sequence_number"]["S"])

    def read_seen(self, keys: Collection[tuple[str, str]], now: int) -> set[tuple[str, str]]:
        """The (tenant, event_id) keys with a live seen marker, read consistently (TTL deletion lags, so
        an expired marker that is still there counts as absent)."""
        found: set[tuple[str, str]] = set()
        ordered = list(keys)
        for start in range(0, len(ordered), BATCH_GET_MAX_KEYS):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [seen_key(t, e) for t, e in ordered[start : start + BATCH_GET_MAX_KEYS]],
                    "ConsistentRead": True,
                    "ProjectionExpression": "tenant_id, #b, expires_at",
                    "ExpressionAttributeNames": {"#b": "bucket"},
                }
            }
            for _ in range(_BATCH_GET_ATTEMPTS):
                response = self.client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    if int(item.get("expires_at", {}).get("N", "0")) > now:
                        tenant = item["tenant_id"]["S"].removeprefix(SEEN_PREFIX)
                        found.add((tenant, item["bucket"]["S"]))
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise RuntimeError("BatchGetItem left keys unprocessed after retries; the batch is retried")
        return found

    def apply(
        self,
        shard_key: str,
        deltas: Mapping[tuple[str, str], tuple[int, int]],
        old: str | None,
        new: str,
        seen: Sequence[tuple[str, str]] = (),
        now: int = 0,
        expires_at: int = 0,
    ) -> None:
        """Add (count, bytes) to each (tenant, bucket), put a seen marker (TTL ``expires_at``) per
        (tenant, event_id) of ``seen`` where none is live at ``now``, and move the checkpoint from ``old`` to ``new``, atomically;
        raises (TransactionCanceledException) when the checkpoint is no longer ``old`` or a live
        marker is already there (a replay counted meanwhile by another shard)."""
        ops: list[dict[str, Any]] = []
        for tenant, event_id in seen:
            ops.append(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": {**seen_key(tenant, event_id), "expires_at": {"N": str(expires_at)}},
                        "ConditionExpression": "attribute_not_exists(#b) OR expires_at < :now",
                        "ExpressionAttributeNames": {"#b": "bucket"},
                        "ExpressionAttributeValues": {":now": {"N": str(now)}},
                    }
                }
            )
        for (tenant, bucket), (count, size) in deltas.items():
            minute, _, kind = bucket.partition("#")
            ops.append(
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": {"tenant_id": {"S": tenant}, "bucket": {"S": bucket}},
                        "UpdateExpression": "SET #k = :k, #m = :m ADD #c :c, #b :b",
                        "ExpressionAttributeNames": {
                            "#k": "kind",
                            "#m": "minute",
                            "#c": "record_count",
                            "#b": "byte_count",
                        },
                        "ExpressionAttributeValues": {
                            ":k": {"S": kind},
                            ":m": {"S": minute},
                            ":c": {"N": str(count)},
                            ":b": {"N": str(size)},
                        },
                    }
                }
            )
        checkpoint: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"tenant_id": {"S": CHECKPOINT_TENANT}, "bucket": {"S": shard_key}},
            "UpdateExpression": "SET #s = :new",
            "ExpressionAttributeNames": {"#s": "sequence_number"},
            "ExpressionAttributeValues": {":new": {"S": new}},
        }
        if old is None:
            checkpoint["ConditionExpression"] = "attribute_not_exists(#s)"
        else:
            checkpoint["ConditionExpression"] = "#s = :old"
            checkpoint["ExpressionAttributeValues"][":old"] = {"S": old}
        ops.append({"Update": checkpoint})
        self._transact(ops)

    def _transact(self, ops: list[dict[str, Any]]) -> None:
        """TransactWriteItems, retried unchanged after a conflict: a cancelled transaction applied
        nothing, and its checkpoint condition still holds (one batch per shard at a time)."""
        for attempt in range(self.backoff.max_attempts):
            try:
                self.client.transact_write_items(TransactItems=ops)
                return
            except Exception as exc:
                if not is_transaction_conflict(exc) or attempt + 1 >= self.backoff.max_attempts:
                    raise
                self.conflicts += 1
                self._sleep(self.backoff.delay(attempt))
