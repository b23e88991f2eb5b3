"""Tenant API keys: generation, hashing and the DynamoDB store the authorizer and the key CLI share.

A key looks like ``slk_<43 url-safe characters>`` (32 random bytes). The tenant is deliberately not part
of the key: a key names nobody, so a leaked key reveals nothing and tenants cannot guess each other's.
Only ``SHA-256(key)`` is stored, as ``key_hash``, the partition key of ``API_KEYS_TABLE_NAME``; the
plaintext is shown once at creation. The public ``key_id`` (the first 8 characters after the prefix) lets
people list and revoke keys without handling the secret, and is what logs show.
"""

from __future__ import annotations

import builtins
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import orjson
from botocore.exceptions import ClientError

from core import aws
from core.errors import error_code
from core.partitions import parse_partitions
from core.tenancy import is_valid_tenant_id
from ingest.quota_store import PARTITIONS_ATTRIBUTE, parse_overrides, partitions_override, quota_key

KEY_PREFIX: Final = "slk_"
KEY_RANDOM_BYTES: Final = 32  # 256 bits: guessing is hopeless, which is what makes a plain hash safe
KEY_ID_LENGTH: Final = 8
MAX_DESCRIPTION_CHARS: Final = 256
# token_urlsafe(32) is exactly 43 base64url characters (no padding).
_KEY_RE: Final = re.compile(r"slk_[A-Za-z0-9_-]{43}")
_KEY_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{8}")


class ApiKeyNotFound(LookupError):
    """No key has this ``key_id``."""


class PartitionsLowered(ValueError):
    """A tenant's partitions may only be raised (``ApiKeyStore.set_partitions``)."""


class AmbiguousKeyId(ValueError):
    """Two keys share a ``key_id`` (48 random bits: possible in theory only); revoke refuses to guess."""


def generate_key() -> str:
    """A new random API key (plaintext). Shown to the operator once, never stored."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def is_well_formed(key: object) -> bool:
    """True for strings shaped like keys we issue; anything else is rejected before any database call."""
    return isinstance(key, str) and _KEY_RE.fullmatch(key) is not None


def key_id_of(key: str) -> str | None:
    """The public id of a well-formed key (safe to log), or None for anything else."""
    return key[len(KEY_PREFIX) : len(KEY_PREFIX) + KEY_ID_LENGTH] if is_well_formed(key) else None


def is_valid_key_id(key_id: object) -> bool:
    return isinstance(key_id, str) and _KEY_ID_RE.fullmatch(key_id) is not None


def hash_key(key: str) -> str:
    """The stored form of a key: hex SHA-256.

    Why not bcrypt/argon2: slow, salted password hashes exist because passwords are low-entropy and can be
    brute-forced from a leaked hash. These keys carry 256 random bits, so inverting SHA-256 is as hopeless
    as guessing the key, and a fast unsalted hash is what lets the authorizer find the key with a single
    GetItem on the hash (a salted hash would need the salt first, i.e. a lookup by some other id) and keep
    its latency and cost at a few milliseconds instead of ~100 ms of deliberate work on every cache miss.
    """
    return hashlib.sha256(key.encode()).hexdigest()


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ApiKeyRecord:
    """What may be shown about a key: never its hash, never its plaintext."""

    key_id: str
    tenant_id: str
    created_at: str
    description: str = ""
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ApiKeyStorePort(Protocol):
    """The port the authorizer and the CLI depend on; ``ApiKeyStore`` is its DynamoDB adapter."""

    def create(self, tenant_id: str, description: str = "") -> tuple[str, ApiKeyRecord]: ...

    def lookup(self, key: str) -> str | None: ...

    def list(self, tenant_id: str | None = None) -> builtins.list[ApiKeyRecord]: ...

    def revoke(self, key_id: str) -> ApiKeyRecord: ...

    def set_quota(
        self, tenant_id: str, overrides: dict[str, dict[str, float]]
    ) -> dict[str, dict[str, float]]: ...

    def quota(self, tenant_id: str) -> dict[str, dict[str, float]]: ...

    def set_partitions(self, tenant_id: str, partitions: int) -> int: ...

    def partitions(self, tenant_id: str) -> int | None: ...


# Every attribute a record is built from. `key_hash` is deliberately absent: listings never return it.
_RECORD_ATTRIBUTES: Final = ("key_id", "tenant_id", "created_at", "description", "revoked_at")


def _record(item: dict[str, Any]) -> ApiKeyRecord:
    def text(name: str) -> str | None:
        value = item.get(name)
        return value["S"] if isinstance(value, dict) and "S" in value else None

    return ApiKeyRecord(
        key_id=text("key_id") or "",
        tenant_id=text("tenant_id") or "",
        created_at=text("created_at") or "",
        description=text("description") or "",
        revoked_at=text("revoked_at"),
    )


class ApiKeyStore:
    """API keys in DynamoDB (low-level client). Table: partition key ``key_hash`` (S), nothing else.

    ``lookup`` is the hot path (one GetItem per authorizer cache miss); ``list`` and ``revoke`` scan, which
    is fine for a small admin table and keeps the table to a single key with no index to provision.
    """

    def __init__(self, table_name: str, client: Any = None, clock: Callable[[], datetime] = _utc_now) -> None:
        self._table = table_name
        self._client = aws.client("dynamodb") if client is None else client
        self._clock = clock

    def create(self, tenant_id: str, description: str = "") -> tuple[str, ApiKeyRecord]:
        """Issue a key for ``tenant_id``. Returns the plaintext (show it once) and the public record."""
        if not is_valid_tenant_id(tenant_id):
            raise ValueError(f"not a valid tenant id: {tenant_id!r}")
        if len(description) > MAX_DESCRIPTION_CHARS:
            raise ValueError(f"description is longer than {MAX_DESCRIPTION_CHARS} characters")
        key = generate_key()
        key_id = key_id_of(key)
        assert key_id is not None  # generate_key() output is well-formed by construction
        record = ApiKeyRecord(key_id, tenant_id, _iso(self._clock()), description)
        self._client.put_item(
            TableName=self._table,
            Item={
                "key_hash": {"S": hash_key(key)},
                "key_id": {"S": record.key_id},
                "tenant_id": {"S": record.tenant_id},
                "created_at": {"S": record.created_at},
                "description": {"S": record.description},
            },
            # A 256-bit collision will not happen; the condition makes "never overwrite a key" explicit.
            ConditionExpression="attribute_not_exists(#key_hash)",
            ExpressionAttributeNames={"#key_hash": "key_hash"},
        )
        return key, record

    def lookup(self, key: str) -> str | None:
        """The tenant of an active key, or None when the key is malformed, unknown or revoked."""
        if not is_well_formed(key):
            return None
        response = self._client.get_item(
            TableName=self._table,
            Key={"key_hash": {"S": hash_key(key)}},
            ProjectionExpression="#tenant_id, #revoked_at",
            ExpressionAttributeNames={"#tenant_id": "tenant_id", "#revoked_at": "revoked_at"},
        )
        item = response.get("Item")
        if not item or "revoked_at" in item:
            return None
        tenant_id = item.get("tenant_id", {}).get("S")
        # The tenant becomes a partition key downstream: never pass on something malformed.
        return tenant_id if is_valid_tenant_id(tenant_id) else None

    def _scan(self, **kwargs: Any) -> builtins.list[dict[str, Any]]:
        items: builtins.list[dict[str, Any]] = []
        request: dict[str, Any] = {"TableName": self._table, **kwargs}
        while True:
            page = self._client.scan(**request)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def list(self, tenant_id: str | None = None) -> builtins.list[ApiKeyRecord]:
        """Every key (of one tenant when given), oldest first per tenant. Never returns hashes."""
        names = {f"#{name}": name for name in _RECORD_ATTRIBUTES}
        kwargs: dict[str, Any] = {
            "ProjectionExpression": ", ".join(names),
            "ExpressionAttributeNames": names,
        }
        # Only keys: the table also holds tenants' quota overrides and quota state (ingest/quota_store.py).
        kwargs["FilterExpression"] = "attribute_exists(#key_id)"
        if tenant_id is not None:
            if not is_valid_tenant_id(tenant_id):
                raise ValueError(f"not a valid tenant id: {tenant_id!r}")
            kwargs["FilterExpression"] += " AND #tenant_id = :tenant_id"
            kwargs["ExpressionAttributeValues"] = {":tenant_id": {"S": tenant_id}}
        records = [_record(item) for item in self._scan(**kwargs)]
        return sorted(records, key=lambda r: (r.tenant_id, r.created_at, r.key_id))

    def revoke(self, key_id: str) -> ApiKeyRecord:
        """Mark the key ``key_id`` revoked (idempotent: the first revocation time is kept).

        The authorizer caches decisions for up to its TTL (300 s), so a revoked key can keep working
        that long. Raises ``ApiKeyNotFound`` or ``AmbiguousKeyId``.
        """
        if not is_valid_key_id(key_id):
            raise ApiKeyNotFound(f"not a key id: {key_id!r}")
        matches = self._scan(
            ProjectionExpression="#key_hash",
            FilterExpression="#key_id = :key_id",
            ExpressionAttributeNames={"#key_hash": "key_hash", "#key_id": "key_id"},
            ExpressionAttributeValues={":key_id": {"S": key_id}},
        )
        if not matches:
            raise ApiKeyNotFound(f"no API key with id {key_id}")
        if len(matches) > 1:
            raise AmbiguousKeyId(f"{len(matches)} keys share the id {key_id}; revoke by hash in the console")
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"key_hash": matches[0]["key_hash"]},
                UpdateExpression="SET #revoked_at = if_not_exists(#revoked_at, :now)",
                # Never create an item: if it vanished since the scan, it is simply not found.
                ConditionExpression="attribute_exists(#key_hash)",
                ExpressionAttributeNames={"#revoked_at": "revoked_at", "#key_hash": "key_hash"},
                ExpressionAttributeValues={":now": {"S": _iso(self._clock())}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise ApiKeyNotFound(f"no API key with id {key_id}") from None
            raise
        return _record(response["Attributes"])

    def set_quota(
        self, tenant_id: str, overrides: dict[str, dict[str, float]]
    ) -> dict[str, dict[str, float]]:
        """Merge ``overrides`` (``{"records": {"rate": 500, "burst": 2000}}``) into the tenant's quota
        overrides, stored beside its keys; returns them all. Ingest picks them up within a minute."""
        if not is_valid_tenant_id(tenant_id):
            raise ValueError(f"not a valid tenant id: {tenant_id!r}")
        merged = self.quota(tenant_id)
        for dimension, values in parse_overrides(orjson.dumps(overrides).decode()).items():
            merged[dimension] = {**merged.get(dimension, {}), **values}
        # UpdateItem, not PutItem: the same item holds the tenant's partitions override.
        self._client.update_item(
            TableName=self._table,
            Key={"key_hash": {"S": quota_key(tenant_id)}},
            UpdateExpression="SET tenant_id = :t, quota = :q, updated_at = :u",
            ExpressionAttributeValues={
                ":t": {"S": tenant_id},
                ":q": {"S": orjson.dumps(merged).decode()},
                ":u": {"S": _iso(self._clock())},
            },
        )
        return merged

    def set_partitions(self, tenant_id: str, partitions: int) -> int:
        """Set the tenant's partition key values (``core/partitions.py``) to ``partitions``; returns it.

        Only raising (or repeating) is allowed, in one conditional write: readers query the keys of the
        current N only, so a lower N would hide the items written under the keys above it.
        ``PartitionsLowered`` names the current N. Ingest picks the new N up within a minute.
        """
        if not is_valid_tenant_id(tenant_id):
            raise ValueError(f"not a valid tenant id: {tenant_id!r}")
        n = parse_partitions(partitions)
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"key_hash": {"S": quota_key(tenant_id)}},
                UpdateExpression="SET tenant_id = :t, #p = :n, updated_at = :u",
                ConditionExpression="attribute_not_exists(#p) OR #p <= :n",
                ExpressionAttributeNames={"#p": PARTITIONS_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":t": {"S": tenant_id},
                    ":n": {"N": str(n)},
                    ":u": {"S": _iso(self._clock())},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            current = exc.response.get("Item", {}).get(PARTITIONS_ATTRIBUTE, {}).get("N", "?")
            raise PartitionsLowered(
                f"tenant {tenant_id} has {current} partitions; lowering it to {n} is refused: readers query "
                f"the keys of the current number only, so items under the others would no longer be read"
            ) from None
        return n

    def partitions(self, tenant_id: str) -> int | None:
        """The tenant's partitions override, None when none is set (``TENANT_PARTITIONS`` applies)."""
        if not is_valid_tenant_id(tenant_id):
            raise ValueError(f"not a valid tenant id: {tenant_id!r}")
        item = self._client.get_item(
            TableName=self._table, Key={"key_hash": {"S": quota_key(tenant_id)}}
        ).get("Item")
        return partitions_override(item)

    def quota(self, tenant_id: str) -> dict[str, dict[str, float]]:
        """The tenant's quota overrides (empty: the defaults of the ingest function apply)."""
        if not is_valid_tenant_id(tenant_id):
            raise ValueError(f"not a valid tenant id: {tenant_id!r}")
        item = self._client.get_item(
            TableName=self._table, Key={"key_hash": {"S": quota_key(tenant_id)}}
        ).get("Item")
        return parse_overrides(item["quota"]["S"]) if item and "quota" in item else {}
