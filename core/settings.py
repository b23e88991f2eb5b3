"""One validated view of the environment, shared by every function and the local runtime."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from core.tenancy import TENANT_ID_RE

KiB = 1024
MiB = 1024 * KiB


class SettingsError(ValueError):
    """A configuration variable is missing or malformed; the message names it."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name) or default
    if value not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """Configuration of the pipeline. Defaults are the limits of DESIGN.md §1."""

    # Resources (names/URLs come from Terraform outputs or the local runtime).
    queue_url: str = ""
    stream_name: str = ""
    table_name: str = ""
    rollup_table_name: str = ""
    archive_bucket: str = ""
    api_keys_table_name: str = ""
    # Tenancy and auth.
    default_tenant: str = "default"
    auth_mode: str = "none"  # "none": tenant from header/body/default; "api_key": only from the authorizer
    # Request limits.
    max_body_bytes: int = 1 * MiB
    max_decompressed_bytes: int = 10 * MiB
    max_records: int = 1000
    max_record_bytes: int = 256 * KiB
    max_depth: int = 64
    # Publishing.
    publish_budget_seconds: float = 8.0
    sqs_batch_max_bytes: int = 256 * KiB
    partition_key: str = "event_id"  # or "tenant_id": per-tenant order at the price of hot shards
    # Worker.
    retention_days: int = 30
    redact_ip_addresses: bool = False
    redaction_rules_path: str = ""
    simulated_cost_ms_per_kchar: float = 0.0
    store_budget_seconds: float = 10.0
    store_compact: bool = True  # gzip a stored body when that saves DynamoDB write units
    # Webhook signature verification: JSON mapping source -> {"secrets": [...], ...} (see ingest/webhooks.py).
    webhook_secrets: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build and validate settings from environment variables (names are the fields upper-cased)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {
            "queue_url": env.get("QUEUE_URL", ""),
            "stream_name": env.get("STREAM_NAME", ""),
            "table_name": env.get("TABLE_NAME", ""),
            "rollup_table_name": env.get("ROLLUP_TABLE_NAME", ""),
            "archive_bucket": env.get("ARCHIVE_BUCKET", ""),
            "api_keys_table_name": env.get("API_KEYS_TABLE_NAME", ""),
            "default_tenant": env.get("DEFAULT_TENANT") or "default",
            "auth_mode": _choice(env, "AUTH_MODE", "none", ("none", "api_key")),
            "max_body_bytes": _int(env, "MAX_BODY_BYTES", 1 * MiB, 1),
            "max_decompressed_bytes": _int(env, "MAX_DECOMPRESSED_BYTES", 10 * MiB, 1),
            "max_records": _int(env, "MAX_RECORDS", 1000, 1),
            "max_record_bytes": _int(env, "MAX_RECORD_BYTES", 256 * KiB, 1),
            "max_depth": _int(env, "MAX_DEPTH", 64, 1),
            "publish_budget_seconds": _float(env, "PUBLISH_BUDGET_SECONDS", 8.0, 0.1),
            "sqs_batch_max_bytes": _int(env, "SQS_BATCH_MAX_BYTES", 256 * KiB, 1),
            "partition_key": _choice(env, "PARTITION_KEY", "event_id", ("event_id", "tenant_id")),
            "retention_days": _int(env, "RETENTION_DAYS", 30, 0),
            "redact_ip_addresses": _bool(env, "REDACT_IP_ADDRESSES", False),
            "redaction_rules_path": env.get("REDACTION_RULES_PATH", ""),
            "simulated_cost_ms_per_kchar": _float(env, "SIMULATED_COST_MS_PER_KCHAR", 0.0),
            "store_budget_seconds": _float(env, "STORE_BUDGET_SECONDS", 10.0, 0.1),
            "store_compact": _bool(env, "STORE_COMPACT", True),
            "webhook_secrets": env.get("WEBHOOK_SECRETS", ""),
        }
        if not TENANT_ID_RE.match(values["default_tenant"]):
            raise SettingsError(f"DEFAULT_TENANT is not a valid tenant id: {values['default_tenant']!r}")
        if values["max_decompressed_bytes"] < values["max_body_bytes"]:
            raise SettingsError("MAX_DECOMPRESSED_BYTES must be >= MAX_BODY_BYTES")
        return cls(**values)

    def require(self, *names: str) -> None:
        """Fail with a clear message when a function starts without the resources it needs."""
        known = {f.name for f in fields(self)}
        missing = [n.upper() for n in names if n in known and not getattr(self, n)]
        if missing:
            raise SettingsError(f"missing required environment variable(s): {', '.join(missing)}")
