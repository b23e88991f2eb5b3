"""Concurrency preflight: will the account's Lambda concurrency quota take what this env reserves?

AWS keeps at least 10 concurrent executions unreserved in every account and region. New accounts often
have a quota of 10-50 (not the documented 1,000), so an env that reserves, say, 200 for ingest fails at
apply time, half-way through creating the stack. This compares before Terraform runs:

    python infra/scripts/preflight.py --reserved '{"ingest": 200}' --name sluice-prod --region eu-west-1

and exits 1 with the error AWS would give and the quota to request. ``check`` is pure (unit-tested); the
rest reads ``GetAccountSettings`` and the stack's current reservations with the caller's credentials.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Lambda refuses a reservation that leaves fewer unreserved executions than this.
MIN_UNRESERVED = 10
QUOTA_CODE = "L-B99A9384"  # Service Quotas: AWS Lambda, "Concurrent executions"
AWS_ERROR = (
    "InvalidParameterValueException: Specified ReservedConcurrentExecutions for function decreases "
    "account's UnreservedConcurrentExecution below its minimum value of [10]."
)


@dataclass(frozen=True)
class Verdict:
    """The outcome: ``ok``, the unreserved executions left after apply, and the quota that would fit."""

    ok: bool
    unreserved_after: int
    quota_needed: int
    message: str


def check(
    quota: int,
    unreserved_now: int,
    reserved_now: Mapping[str, int],
    wanted: Mapping[str, int],
    *,
    env: str = "",
    region: str = "",
) -> Verdict:
    """Compare ``wanted`` reservations (function -> executions) with the account's quota.

    ``reserved_now`` are this stack's functions' current reservations: re-applying them frees them
    first, so they count as available.
    """
    want = sum(wanted.values())
    after = unreserved_now + sum(reserved_now.values()) - want
    needed = quota + max(0, MIN_UNRESERVED - after)
    detail = ", ".join(f"{k}={v}" for k, v in sorted(wanted.items())) or "nothing"
    if after >= MIN_UNRESERVED:
        return Verdict(
            True,
            after,
            quota,
            f"ok: ENV={env} reserves {want} ({detail}) of the account's {quota} concurrent executions in "
            f"{region}; {after} stay unreserved for the other functions (AWS minimum {MIN_UNRESERVED})",
        )
    return Verdict(
        False,
        after,
        needed,
        f"ENV={env} reserves {want} concurrent executions ({detail}), but the account's Lambda concurrency "
        f"quota in {region} is {quota} with {unreserved_now + sum(reserved_now.values())} available to "
        f"this stack, and AWS keeps {MIN_UNRESERVED} unreserved. terraform apply would fail with:\n"
        f"  {AWS_ERROR}\n"
        f"Request a quota of at least {needed} (Service Quotas > AWS Lambda > Concurrent executions, "
        f"{QUOTA_CODE}):\n"
        f"  aws service-quotas request-service-quota-increase --service-code lambda "
        f"--quota-code {QUOTA_CODE} --desired-value {needed} --region {region}\n"
        f"or lower reserved_concurrency in infra/envs/{env}.tfvars.",
    )


def _reserved_now(client: Any, names: Mapping[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, name in names.items():
        try:
            response = client.get_function_concurrency(FunctionName=name)
        except client.exceptions.ResourceNotFoundException:
            continue
        out[key] = int(response.get("ReservedConcurrentExecutions") or 0)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reserved", help="JSON: function -> reserved executions")
    parser.add_argument("--name", help="stack name <name_prefix>-<env>")
    parser.add_argument("--env", default="")
    parser.add_argument("--region")
    parser.add_argument(
        "--terraform-console",
        metavar="TEXT",
        help="what `terraform console` printed for jsonencode({reserved, name, env, region}) (tf.sh)",
    )
    args = parser.parse_args(argv)
    if args.terraform_console:
        # console prints the JSON document as an HCL string literal, which is also a JSON string.
        doc = json.loads(json.loads(args.terraform_console.strip()))
        args.reserved, args.name = json.dumps(doc["reserved"]), doc["name"]
        args.env, args.region = doc["env"], doc["region"]
    if not (args.reserved is not None and args.name and args.region):
        parser.error("give --reserved, --name and --region, or --terraform-console")
    # -1 means unreserved in Terraform.
    wanted = {k: int(v) for k, v in json.loads(args.reserved).items() if int(v) >= 0}

    import boto3

    client = boto3.client("lambda", region_name=args.region)
    limits = client.get_account_settings()["AccountLimit"]
    names = {k: f"{args.name}-{k}" for k in wanted}
    verdict = check(
        int(limits["ConcurrentExecutions"]),
        int(limits["UnreservedConcurrentExecutions"]),
        _reserved_now(client, names),
        wanted,
        env=args.env,
        region=args.region,
    )
    stream = sys.stdout if verdict.ok else sys.stderr
    stream.write(("" if verdict.ok else "error: ") + verdict.message + "\n")
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
