"""The functions' configuration: every environment variable declared once, each function reading its own.

``VARIABLES`` is the one table of variables: name, default (whose Python type is the setting's type),
bounds, and whether the function cannot start without it (a resource name set by Terraform or by the
local stack, ``local.stack.Stack.handler_env``). Each function has a small frozen settings class
listing only the fields it uses; a field is named after its variable (lower-cased), and
``from_env(environ)`` reads and validates them all at once, raising ``SettingsError`` naming the bad or
missing variable.

    settings = WorkerSettings.from_env()          # os.environ
    settings = IngestSettings.from_env({"QUEUE_URL": "...", "STREAM_NAME": "..."})

Defaults are the limits the API documents (docs/api.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Self

from core.partitions import MAX_PARTITIONS
from core.tenancy import TENANT_ID_RE

KiB = 1024
MiB = 1024 * KiB

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """A configuration variable is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Variable:
    """One environment variable: its name, its default (which fixes its type) and its bounds."""

    name: str
    default: str | int | float | bool
    minimum: float | None = None
    choices: tuple[str, ...] = ()
    required: bool = False  # a resource the function cannot run without

    def read(self, environ: Mapping[str, str]) -> Any:
        """The variable's value from ``environ`` (the default when unset or empty), validated."""
        raw = environ.get(self.name)
        if raw is None or raw == "":
            return self.default
        kind = type(self.default)
        if kind is bool:
            if raw.lower() in _TRUE:
                return True
            if raw.lower() in _FALSE:
                return False
            raise SettingsError(f"{self.name} must be true or false, got {raw!r}")
        if kind is int or kind is float:
            try:
                value: int | float = kind(raw)
            except ValueError:
                what = "an integer" if kind is int else "a number"
                raise SettingsError(f"{self.name} must be {what}, got {raw!r}") from None
            if self.minimum is not None and value < self.minimum:
                raise SettingsError(f"{self.name} must be >= {self.minimum:g}, got {value}")
            return value
        if self.choices and raw not in self.choices:
            raise SettingsError(f"{self.name} must be one of {', '.join(self.choices)}, got {raw!r}")
        return raw


VARIABLES: dict[str, Variable] = {
    v.name.lower(): v
    for v in (
        # Resources (names and URLs come from Terraform outputs or the local stack).
        Variable("QUEUE_URL", "", required=True),
        Variable("STREAM_NAME", "", required=True),
        Variable("TABLE_NAME", "", required=True),
        Variable("ROLLUP_TABLE_NAME", "", required=True),
        Variable("ARCHIVE_BUCKET", "", required=True),
        Variable("API_KEYS_TABLE_NAME", "", required=True),
        # Tenancy and auth. "none": tenant from header/body/default; "api_key": only from the authorizer.
        Variable("DEFAULT_TENANT", "default"),
        Variable("AUTH_MODE", "none", choices=("none", "api_key")),
        # Request limits.
        Variable("MAX_BODY_BYTES", 1 * MiB, minimum=1),
        Variable("MAX_DECOMPRESSED_BYTES", 10 * MiB, minimum=1),
        Variable("MAX_RECORDS", 1000, minimum=1),
        Variable("MAX_RECORD_BYTES", 256 * KiB, minimum=1),
        Variable("MAX_DEPTH", 64, minimum=1),
        # Publishing. PARTITION_KEY=tenant_id: per-tenant order at the price of hot shards.
        Variable("PUBLISH_BUDGET_SECONDS", 8.0, minimum=0.1),
        Variable("SQS_BATCH_MAX_BYTES", 256 * KiB, minimum=1),
        Variable("PARTITION_KEY", "event_id", choices=("event_id", "tenant_id")),
        # Webhook signature verification: JSON mapping source -> {"secrets": [...], ...} (ingest/webhooks.py).
        Variable("WEBHOOK_SECRETS", ""),
        # The same document from Secrets Manager (SecretString), by ARN, re-read after the TTL (rotation).
        Variable("WEBHOOK_SECRETS_ARN", ""),
        Variable("WEBHOOK_SECRETS_TTL_SECONDS", 300.0, minimum=0.0),
        # Storage and redaction.
        Variable("RETENTION_DAYS", 30, minimum=0),
        Variable("REDACT_IP_ADDRESSES", False),
        Variable("REDACTION_RULES_PATH", ""),
        # Redact in the ingest function, before the queue and the stream (docs/security.md): off puts raw
        # records on the queue (4 days), the DLQ (14 days) and the stream (24 h) and to every stream consumer.
        Variable("INGEST_REDACTION", True),
        Variable("SIMULATED_COST_MS_PER_KCHAR", 0.0, minimum=0.0),
        Variable("STORE_BUDGET_SECONDS", 10.0, minimum=0.1),
        Variable("STORE_COMPACT", True),  # gzip a stored body when that saves DynamoDB write units
        # How long the rollup remembers a derived event id so that a replay is not counted again: longer
        # than the stream's retention and any webhook signature tolerance. 0 turns the seen-set off.
        Variable("ROLLUP_DEDUP_WINDOW_SECONDS", 7 * 86400, minimum=0),
        # Per-tenant quotas at ingest (ingest/quotas.py): a rate per second (0: no limit) and a burst
        # (0: one second's rate); bytes are decompressed bytes. A tenant's overrides live in the quota
        # table (`keys quota set`), with the shared bucket state; empty QUOTA_TABLE_NAME: per container only.
        Variable("TENANT_REQUESTS_PER_SECOND", 0.0, minimum=0.0),
        Variable("TENANT_REQUESTS_BURST", 0.0, minimum=0.0),
        Variable("TENANT_BYTES_PER_SECOND", 0.0, minimum=0.0),
        Variable("TENANT_BYTES_BURST", 0.0, minimum=0.0),
        Variable("TENANT_RECORDS_PER_SECOND", 0.0, minimum=0.0),
        Variable("TENANT_RECORDS_BURST", 0.0, minimum=0.0),
        # Partition key values per tenant in the events table (core/partitions.py): 1 keeps the key the
        # tenant id; a tenant's override (`keys partitions set`) lives beside its quota overrides.
        Variable("TENANT_PARTITIONS", 1, minimum=1),
        Variable("QUOTA_TABLE_NAME", ""),
    )
}


class FromEnv:
    """``from_env`` for a frozen dataclass whose fields are named after entries of ``VARIABLES``."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Read and validate every field; ``SettingsError`` names a malformed or missing variable."""
        environ = os.environ if environ is None else environ
        values = {f.name: VARIABLES[f.name].read(environ) for f in fields(cls)}  # type: ignore[arg-type]
        missing = [VARIABLES[n].name for n, value in values.items() if VARIABLES[n].required and not value]
        if missing:
            raise SettingsError(f"missing required environment variable(s): {', '.join(missing)}")
        return cls(**values)


@dataclass(frozen=True)
class IngestSettings(FromEnv):
    """The ingest function: where it publishes, how it assigns tenants, its request limits."""

    queue_url: str
    stream_name: str
    default_tenant: str
    auth_mode: str
    max_body_bytes: int
    max_decompressed_bytes: int
    max_records: int
    max_record_bytes: int
    max_depth: int
    publish_budget_seconds: float
    sqs_batch_max_bytes: int
    partition_key: str
    ingest_redaction: bool
    redact_ip_addresses: bool
    redaction_rules_path: str
    tenant_requests_per_second: float = 0.0
    tenant_requests_burst: float = 0.0
    tenant_bytes_per_second: float = 0.0
    tenant_bytes_burst: float = 0.0
    tenant_records_per_second: float = 0.0
    tenant_records_burst: float = 0.0
    quota_table_name: str = ""
    tenant_partitions: int = 1

    def __post_init__(self) -> None:
        if not TENANT_ID_RE.match(self.default_tenant):
            raise SettingsError(f"DEFAULT_TENANT is not a valid tenant id: {self.default_tenant!r}")
        if self.tenant_partitions > MAX_PARTITIONS:
            raise SettingsError(
                f"TENANT_PARTITIONS must be <= {MAX_PARTITIONS}, got {self.tenant_partitions}"
            )
        if self.max_decompressed_bytes < self.max_body_bytes:
            raise SettingsError("MAX_DECOMPRESSED_BYTES must be >= MAX_BODY_BYTES")


@dataclass(frozen=True)
class WebhookSettings(FromEnv):
    """The ingest function's webhook sources (read apart from ``IngestSettings``: only webhooks need it).

    ``webhook_secrets_arn``, when set, wins over ``webhook_secrets`` (kept for local mode and dev)."""

    webhook_secrets: str
    webhook_secrets_arn: str
    webhook_secrets_ttl_seconds: float


@dataclass(frozen=True)
class AuthorizerSettings(FromEnv):
    """The authorizer (and the API key CLI): the table of API keys."""

    api_keys_table_name: str


@dataclass(frozen=True)
class WorkerSettings(FromEnv):
    """The SQS worker: the events table, retention, redaction, the write budget."""

    table_name: str
    retention_days: int
    redact_ip_addresses: bool
    redaction_rules_path: str
    simulated_cost_ms_per_kchar: float
    store_budget_seconds: float
    store_compact: bool


@dataclass(frozen=True)
class ArchiverSettings(FromEnv):
    """The archiver: the bucket and the redaction of what it archives."""

    archive_bucket: str
    redact_ip_addresses: bool
    redaction_rules_path: str


@dataclass(frozen=True)
class RollupSettings(FromEnv):
    """The rollup: its table and how long it remembers the ids it counted."""

    rollup_table_name: str
    rollup_dedup_window_seconds: int


FUNCTION_SETTINGS: tuple[type[FromEnv], ...] = (
    IngestSettings,
    WebhookSettings,
    AuthorizerSettings,
    WorkerSettings,
    ArchiverSettings,
    RollupSettings,
)
