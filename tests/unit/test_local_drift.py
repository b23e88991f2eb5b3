"""Local mode creates its resources with boto3 (fast, no Terraform needed); these tests keep that list and
the Terraform from drifting: table keys and TTL, the redrive wiring, and the functions' environment."""

from __future__ import annotations

import re

from core.settings import VARIABLES
from local.stack import TABLES
from tests.conftest import REPO

INFRA = REPO / "infra"


def blocks(text: str, resource_type: str) -> dict[str, str]:
    """Body of each ``resource "<type>" "<name>" { ... }`` block, by brace matching."""
    out: dict[str, str] = {}
    for match in re.finditer(rf'resource "{resource_type}" "(\w+)" {{', text):
        depth, i = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        out[match.group(1)] = text[match.end() : i - 1]
    return out


def attr(body: str, name: str) -> str | None:
    found = re.search(rf'^\s*{name}\s*=\s*"([^"]+)"', body, re.MULTILINE)
    return found.group(1) if found else None


def test_tables_have_the_same_keys_and_ttl_as_the_terraform() -> None:
    declared = {}
    for body in blocks((INFRA / "storage.tf").read_text(), "aws_dynamodb_table").values():
        suffix = re.search(r'name\s*=\s*"\$\{local\.name\}-([\w-]+)"', body).group(1)  # type: ignore[union-attr]
        ttl = re.search(r'ttl\s*{[^}]*attribute_name\s*=\s*"(\w+)"', body)
        declared[suffix] = (attr(body, "hash_key"), attr(body, "range_key"), ttl.group(1) if ttl else None)
    assert declared == TABLES


def test_redrive_uses_the_shared_wiring() -> None:
    queue_tf = (INFRA / "queue.tf").read_text()
    assert "maxReceiveCount     = local.wiring.worker.max_receive_count" in queue_tf
    assert "local.wiring.worker.visibility_timeout_seconds" in queue_tf


def test_every_function_variable_is_one_the_code_reads() -> None:
    lambda_tf = (INFRA / "lambda.tf").read_text()
    names = set(re.findall(r"^\s*([A-Z][A-Z0-9_]+)\s*=", lambda_tf, re.MULTILINE))
    names |= set(re.findall(r"\{\s*([A-Z][A-Z0-9_]+)\s*=", lambda_tf))
    settings = {v.name for v in VARIABLES.values()}
    unknown = {n for n in names if not n.startswith("POWERTOOLS_") and n not in settings}
    assert names, "no environment found in infra/lambda.tf"
    assert not unknown, f"infra/lambda.tf sets variables no code reads: {sorted(unknown)}"
    # and every resource the handlers need is given to them
    assert {
        "QUEUE_URL",
        "STREAM_NAME",
        "TABLE_NAME",
        "ROLLUP_TABLE_NAME",
        "ARCHIVE_BUCKET",
        "API_KEYS_TABLE_NAME",
    } <= names
