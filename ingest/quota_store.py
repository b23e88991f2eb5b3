"""The shared quota state and the per-tenant quota overrides in DynamoDB (``QuotaStorePort``'s adapter).

Both live in the API keys table, beside the tenant's keys, under partition keys no key hash can take
(a hash is 64 hex digits): ``quota#<tenant>`` holds the overrides set by ``keys quota set`` and the
partitions override set by ``keys partitions set`` (no TTL),
``quota-state#<tenant>`` the shared bucket (a theoretical arrival time per dimension, a version, and an
``expires_at`` TTL: an idle tenant's state is worth nothing once its bucket is full again). The ingest
function may touch only these two prefixes (``dynamodb:LeadingKeys`` in infra/iam.tf).

A lease is one conditional ``UpdateItem`` on the version this container last saw; when another container
wrote in between, DynamoDB returns the item as it is (``ReturnValuesOnConditionCheckFailure``) and the
lease is planned again on it, so a conflict costs one more call and no read. A lease still conflicting
after ``MAX_ATTEMPTS`` is refused, not failed open: the store is there, the tenant is just busy. The container's last view
can only be behind the truth (a theoretical arrival time never decreases), so a refusal planned on it
is certain and needs no call at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from core import aws
from core.errors import error_code
from ingest.quotas import (
    DIMENSIONS,
    LeasePlan,
    QuotaPolicy,
    QuotaStoreUnavailable,
    SharedState,
    plan_lease,
)

QUOTA_PREFIX: Final = "quota#"
STATE_PREFIX: Final = "quota-state#"
# Each conflict means another container's lease went through: a round has a winner, so this many
# containers leasing for one tenant at the same instant are all served before giving up.
MAX_ATTEMPTS: Final = 8
CONTENDED_RETRY_SECONDS: Final = 0.1
STATE_TTL_MARGIN_SECONDS: Final = 60
# The attribute of a tenant's ``quota#<tenant>`` item holding its partitions override (core/partitions.py).
PARTITIONS_ATTRIBUTE: Final = "partitions"


def quota_key(tenant_id: str) -> str:
    """The partition key of a tenant's quota overrides in the API keys table."""
    return QUOTA_PREFIX + tenant_id


def state_key(tenant_id: str) -> str:
    """The partition key of a tenant's shared bucket state in the API keys table."""
    return STATE_PREFIX + tenant_id


def parse_overrides(text: str) -> dict[str, dict[str, float]]:
    """The overrides document (``{"records": {"rate": 500, "burst": 2000}}``), validated."""
    doc = orjson.loads(text)
    if not isinstance(doc, dict):
        raise ValueError("quota overrides must be a JSON object")
    out: dict[str, dict[str, float]] = {}
    for dimension, values in doc.items():
        if dimension not in DIMENSIONS or not isinstance(values, dict):
            raise ValueError(f"unknown quota dimension {dimension!r}")
        limits = {k: float(v) for k, v in values.items() if k in ("rate", "burst")}
        if any(v < 0 for v in limits.values()) or set(values) - {"rate", "burst"}:
            raise ValueError(f"quota {dimension!r} takes a non-negative rate and burst only")
        out[dimension] = limits
    return out


def partitions_override(item: Mapping[str, Any] | None) -> int | None:
    """The partitions override on a tenant's ``quota#<tenant>`` item (attribute values), None when unset."""
    return int(item[PARTITIONS_ATTRIBUTE]["N"]) if item and PARTITIONS_ATTRIBUTE in item else None


def _state(item: Mapping[str, Any] | None) -> SharedState:
    if not item:
        return SharedState()
    tats = {d: float(item[f"tat_{d}"]["N"]) for d in DIMENSIONS if f"tat_{d}" in item}
    return SharedState(tats, int(item.get("version", {}).get("N", "0")))


class DynamoQuotaStore:
    """Leases of the shared per-tenant buckets and the tenants' overrides, in the API keys table."""

    def __init__(self, table_name: str, client: Any = None) -> None:
        self._table = table_name
        self._client = client
        self._seen: dict[str, SharedState] = {}

    @property
    def client(self) -> Any:
        return self._client or aws.client("dynamodb")

    def overrides(self, tenant_id: str) -> Mapping[str, Mapping[str, float]]:
        """The tenant's overrides (empty when none are set)."""
        try:
            item = self.client.get_item(
                TableName=self._table, Key={"key_hash": {"S": quota_key(tenant_id)}}, ConsistentRead=False
            ).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise QuotaStoreUnavailable(error_code(exc)) from exc
        if not item or "quota" not in item:
            return {}
        try:
            return parse_overrides(item["quota"]["S"])
        except ValueError:
            return {}  # never refuse a tenant's traffic over a malformed document: the default applies

    def partitions(self, tenant_id: str) -> int | None:
        """The tenant's partitions override (``keys partitions set``), None when none is set."""
        try:
            item = self.client.get_item(
                TableName=self._table,
                Key={"key_hash": {"S": quota_key(tenant_id)}},
                ProjectionExpression="#p",
                ExpressionAttributeNames={"#p": PARTITIONS_ATTRIBUTE},
            ).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise QuotaStoreUnavailable(error_code(exc)) from exc
        return partitions_override(item)

    def lease(
        self,
        tenant_id: str,
        now: float,
        policy: QuotaPolicy,
        need: Mapping[str, float],
        want: Mapping[str, float],
    ) -> LeasePlan:
        """Grant a lease (see ``ingest.quotas.plan_lease``) and write the new state, retrying conflicts."""
        seen = self._seen.get(tenant_id, SharedState())
        for _ in range(MAX_ATTEMPTS):
            plan = plan_lease(seen, now, policy, need, want)
            if plan.state is None:
                return plan
            try:
                self._write(tenant_id, seen, plan.state, now, policy)
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise QuotaStoreUnavailable(error_code(exc)) from exc
                seen = _state(exc.response.get("Item"))
                continue
            except BotoCoreError as exc:
                raise QuotaStoreUnavailable(type(exc).__name__) from exc
            self._seen[tenant_id] = plan.state
            return plan
        self._seen[tenant_id] = seen
        # Still contended: the store works and the tenant is sending from many containers at once. Refuse
        # this request (failing open here would let every contender admit a whole local bucket).
        dimension = next(iter(need), "requests")
        return LeasePlan({}, None, CONTENDED_RETRY_SECONDS, dimension)

    def _write(
        self, tenant_id: str, seen: SharedState, new: SharedState, now: float, policy: QuotaPolicy
    ) -> None:
        names = {"#version": "version", "#expires_at": "expires_at"}
        values: dict[str, Any] = {":version": {"N": str(new.version)}}
        sets = ["#version = :version", "#expires_at = :expires_at"]
        for dimension, tat in new.tats.items():
            names[f"#tat_{dimension}"] = f"tat_{dimension}"
            values[f":tat_{dimension}"] = {"N": repr(tat)}
            sets.append(f"#tat_{dimension} = :tat_{dimension}")
        refill = max(
            (policy.limit(d).burst / policy.limit(d).rate for d in new.tats if not policy.limit(d).unlimited),
            default=0.0,
        )
        horizon = max([now, *new.tats.values()]) + refill + STATE_TTL_MARGIN_SECONDS
        values[":expires_at"] = {"N": str(math.ceil(horizon))}
        if seen.version == 0:
            condition = "attribute_not_exists(#key_hash)"
            names["#key_hash"] = "key_hash"
        else:
            condition = "#version = :seen"
            values[":seen"] = {"N": str(seen.version)}
        self.client.update_item(
            TableName=self._table,
            Key={"key_hash": {"S": state_key(tenant_id)}},
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
