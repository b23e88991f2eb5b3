"""Operator CLI for tenant API keys, quotas and partitions: ``python -m local keys create|list|revoke|quota
set|quota show|partitions set|partitions show``.

Reads ``API_KEYS_TABLE_NAME`` (and ``AWS_ENDPOINT_URL`` in local mode, honoured by boto3) via AuthorizerSettings.
``create`` prints the plaintext key once, alone on stdout (so ``KEY=$(... keys create --tenant acme)``
works); everything meant for the human goes to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from core.errors import error_code
from core.partitions import MAX_PARTITIONS, read_keys
from core.settings import AuthorizerSettings, SettingsError
from core.terminal import safe
from ingest.apikeys import (
    AmbiguousKeyId,
    ApiKeyNotFound,
    ApiKeyRecord,
    ApiKeyStore,
    ApiKeyStorePort,
    PartitionsLowered,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keys", description="Manage tenant API keys.")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="issue a new key for a tenant (shown once)")
    create.add_argument("--tenant", required=True, help="tenant id the key writes as")
    create.add_argument("--description", default="", help="free text, e.g. who holds the key")
    listing = commands.add_parser("list", help="list keys (ids and status, never secrets)")
    listing.add_argument("--tenant", help="only this tenant's keys")
    listing.add_argument("--json", action="store_true", help="one JSON object per key")
    revoke = commands.add_parser(
        "revoke", help="revoke a key by its key id: --key-id=ID, or `revoke -- ID` (ids may start with -)"
    )
    revoke.add_argument("key_id", nargs="?", help="the 8-character key id shown by create and list")
    revoke.add_argument("--key-id", dest="key_id_option", metavar="ID", help="the key id (write --key-id=ID)")
    quota = commands.add_parser("quota", help="a tenant's quota overrides: set | show")
    quota_commands = quota.add_subparsers(dest="quota_command", required=True)
    quota_set = quota_commands.add_parser("set", help="override some of a tenant's quotas (0: no limit)")
    quota_set.add_argument("--tenant", required=True)
    for dimension, unit in (
        ("records", "records"),
        ("bytes", "decompressed bytes"),
        ("requests", "requests"),
    ):
        quota_set.add_argument(f"--{dimension}-per-second", type=float, help=f"{unit} per second")
        quota_set.add_argument(f"--{dimension}-burst", type=float, help=f"{unit} admitted at once")
    quota_show = quota_commands.add_parser("show", help="a tenant's quota overrides (empty: the defaults)")
    quota_show.add_argument("--tenant", required=True)
    partitions = commands.add_parser(
        "partitions", help="a tenant's partition key values in the events table: set | show"
    )
    partitions_commands = partitions.add_subparsers(dest="partitions_command", required=True)
    partitions_set = partitions_commands.add_parser(
        "set",
        help=f"spread a tenant's items over N partition key values (1..{MAX_PARTITIONS}; never lowered)",
    )
    partitions_set.add_argument("--tenant", required=True)
    partitions_set.add_argument("partitions", type=int, metavar="N")
    partitions_show = partitions_commands.add_parser("show", help="a tenant's partitions override")
    partitions_show.add_argument("--tenant", required=True)
    return parser


def _format_partitions(tenant_id: str, partitions: int | None) -> str:
    if partitions is None:
        return f"tenant {tenant_id}: no partitions override (the ingest function's TENANT_PARTITIONS applies)"
    keys = ", ".join(read_keys(tenant_id, partitions))
    return f"tenant {tenant_id}: {partitions} partition(s) (or TENANT_PARTITIONS if larger); readers query {keys}"


def _quota_overrides(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    overrides: dict[str, dict[str, float]] = {}
    for dimension in ("records", "bytes", "requests"):
        values = {
            name: value
            for name, value in (
                ("rate", getattr(args, f"{dimension}_per_second")),
                ("burst", getattr(args, f"{dimension}_burst")),
            )
            if value is not None
        }
        if values:
            overrides[dimension] = values
    if not overrides:
        raise ValueError("give at least one of --records-per-second, --bytes-burst, ...")
    return overrides


def _format_quota(tenant_id: str, overrides: dict[str, dict[str, float]]) -> str:
    if not overrides:
        return f"tenant {tenant_id}: no overrides (the ingest function's TENANT_* defaults apply)"
    lines = [f"tenant {tenant_id}:"]
    for dimension, values in sorted(overrides.items()):
        shown = ", ".join(f"{name} {value:g}" for name, value in sorted(values.items()))
        lines.append(f"  {dimension}: {shown}")
    return "\n".join(lines)


def _format_table(records: list[ApiKeyRecord]) -> str:
    rows = [("KEY_ID", "TENANT", "STATUS", "CREATED_AT", "DESCRIPTION")]
    rows += [
        (
            r.key_id,
            r.tenant_id,
            "active" if r.active else f"revoked {r.revoked_at}",
            r.created_at,
            r.description,
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        safe(
            "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4]
        )
        for row in rows
    )


def _store_from_env() -> ApiKeyStorePort:
    return ApiKeyStore(AuthorizerSettings.from_env().api_keys_table_name)


def main(argv: list[str] | None = None) -> int:
    """Run one key command; returns the process exit code (0 ok, 1 failed, 2 usage/config)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "revoke":
        if (args.key_id is None) == (args.key_id_option is None):
            parser.error("revoke takes one key id: --key-id=ID or `revoke -- ID`")
        args.key_id = args.key_id or args.key_id_option
    try:
        store = _store_from_env()
        if args.command == "create":
            key, record = store.create(args.tenant, args.description)
            print(key)
            print(
                f"Created key {record.key_id} for tenant {record.tenant_id}. This is the only time the key "
                "is shown: it is not stored (only its SHA-256 hash is). Keep it in a secret store now.",
                file=sys.stderr,
            )
        elif args.command == "list" and args.json:
            for r in store.list(args.tenant):
                print(safe(orjson.dumps(dataclasses.asdict(r)).decode()))
        elif args.command == "list":
            print(_format_table(store.list(args.tenant)))
        elif args.command == "quota":
            if args.quota_command == "set":
                merged = store.set_quota(args.tenant, _quota_overrides(args))
                print(_format_quota(args.tenant, merged))
                print("Ingest applies it within a minute (each container re-reads it).", file=sys.stderr)
            else:
                print(_format_quota(args.tenant, store.quota(args.tenant)))
        elif args.command == "partitions":
            if args.partitions_command == "set":
                print(_format_partitions(args.tenant, store.set_partitions(args.tenant, args.partitions)))
                print("Ingest applies it within a minute (each container re-reads it).", file=sys.stderr)
            else:
                print(_format_partitions(args.tenant, store.partitions(args.tenant)))
        else:
            record = store.revoke(args.key_id)
            print(
                f"Revoked key {record.key_id} of tenant {record.tenant_id} at {record.revoked_at}. "
                "API Gateway may keep accepting it for up to the authorizer cache TTL (300 s)."
            )
    except (ApiKeyNotFound, AmbiguousKeyId, PartitionsLowered) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (SettingsError, ValueError) as exc:  # missing table name, invalid tenant id, description too long
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ClientError, BotoCoreError) as exc:
        print(f"error: AWS call failed ({error_code(exc)}): {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
