"""Operator CLI for tenant API keys: ``python -m local keys create|list|revoke``.

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
from core.settings import AuthorizerSettings, SettingsError
from core.terminal import safe
from ingest.apikeys import AmbiguousKeyId, ApiKeyNotFound, ApiKeyRecord, ApiKeyStore, ApiKeyStorePort

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
    return parser


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
        else:
            record = store.revoke(args.key_id)
            print(
                f"Revoked key {record.key_id} of tenant {record.tenant_id} at {record.revoked_at}. "
                "API Gateway may keep accepting it for up to the authorizer cache TTL (300 s)."
            )
    except (ApiKeyNotFound, AmbiguousKeyId) as exc:
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
