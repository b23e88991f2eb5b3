"""The rollup's storage adapter: ``DynamoRollupStore`` behind the ``RollupStore`` port of
``consumers.rollup.counters``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core import aws

CHECKPOINT_TENANT = "#checkpoint"  # not a valid tenant id (core.tenancy), so it cannot collide with one


class DynamoRollupStore:
    """Counters and the per-shard checkpoint in the rollup table, applied in one TransactWriteItems."""

    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self._client = client

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

    def apply(
        self,
        shard_key: str,
        deltas: Mapping[tuple[str, str], tuple[int, int]],
        old: str | None,
        new: str,
    ) -> None:
        """Add (count, bytes) to each (tenant, bucket) and move the checkpoint from ``old`` to ``new``,
        atomically; raises (TransactionCanceledException) when the checkpoint is no longer ``old``."""
        ops: list[dict[str, Any]] = []
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
        self.client.transact_write_items(TransactItems=ops)
