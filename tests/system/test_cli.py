"""The `sluice` CLI against a running stack, through both of its paths.

The deployment path (``--outputs FILE``: a saved ``terraform output -json``, the caller's own credentials
and ``AWS_ENDPOINT_URL``) is driven against the local stack's emulator, so every command that would run
against AWS runs here against real (emulated) resources: health, stats, keys, events, dlq. Stored text
with control characters must reach the terminal escaped.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
from pathlib import Path

import orjson
import pytest

from core import aws
from ingest.apikeys import key_id_of
from local.cli import main
from local.runtime import LocalRuntime
from tests.support.localkit import local_stack, post, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVIL = "login failed \x1b[2J\x1b[31mfor root\x07 \u202eevil"


def cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(args))
    return code, out.getvalue()


def outputs_file(runtime: LocalRuntime, path: Path) -> Path:
    """What `terraform output -json` of infra/ gives, for the resources of this stack."""
    s = runtime.stack
    assert s is not None
    values = {
        "api_url": s.api_url, "queue_url": s.queue_url, "dlq_url": s.dlq_url, "stream_name": s.stream_name,
        "stream_failures_queue_url": s.stream_failures_url, "table_name": s.table_name,
        "rollup_table_name": s.rollup_table_name, "api_keys_table_name": s.api_keys_table_name,
        "archive_bucket": s.archive_bucket, "region": s.region,
    }  # fmt: skip
    path.write_bytes(
        orjson.dumps({k: {"value": v, "type": "string", "sensitive": False} for k, v in values.items()})
    )
    return path


def test_the_deployment_path_operates_a_stack_from_its_terraform_outputs(tmp_path: Path) -> None:
    with local_stack(tmp_path, "cli") as runtime:
        s = runtime.stack
        assert s is not None
        # GIVEN only the outputs file and the user's environment (endpoint and credentials), no state dir
        outputs = outputs_file(runtime, tmp_path / "outputs.json")
        os.environ["AWS_ENDPOINT_URL"] = s.endpoint_url
        os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
        aws.client.cache_clear()
        target = ["--state-dir", str(tmp_path / "nothing-here"), "--outputs", str(outputs)]

        # health and stats
        code, out = cli(*target, "health")
        assert code == 0 and "-> 200" in out, out
        code, out = cli(*target, "--json", "stats")
        assert code == 0 and "dlq" in "".join(orjson.loads(out)).lower(), out

        # keys: create (the key alone on stdout), list --json, revoke --key-id=
        code, out = cli(*target, "keys", "create", "--tenant", "acme", "--description", "first")
        key = out.strip()
        assert code == 0 and key_id_of(key) is not None, out
        code, out = cli(*target, "--json", "keys", "list")
        (row,) = [orjson.loads(line) for line in out.splitlines()]
        assert code == 0 and row["tenant_id"] == "acme" and key not in out
        code, out = cli(*target, "keys", "revoke", f"--key-id={row['key_id']}")
        assert code == 0 and f"Revoked key {row['key_id']}" in out

        # events: a log line carrying terminal escapes, stored, then listed and fetched
        status, _, receipt = post(
            f"{runtime.api_url}/ingest", EVIL.encode(), {"content-type": "text/plain", "x-tenant-id": "acme"}
        )
        assert status == 202, receipt
        (event_id,) = receipt["event_ids"]
        assert wait_for(
            lambda: event_id in cli(*target, "events", "list", "--tenant", "acme")[1], timeout=120
        )
        code, out = cli(*target, "events", "list", "--tenant", "acme")
        assert code == 0 and "\x1b" not in out and "\x07" not in out and "\u202e" not in out
        assert "\\x1b[2J\\x1b[31mfor root\\x07 \\u202eevil" in out
        code, out = cli(*target, "--json", "events", "list", "--tenant", "acme")
        (doc,) = [orjson.loads(line) for line in out.splitlines()]
        assert doc["event_id"] == event_id and "\x1b" not in out and "\u202e" not in out
        code, out = cli(*target, "events", "get", "--tenant", "acme", event_id)
        assert code == 0 and "\x1b" not in out and event_id in out
        code, out = cli(*target, "tail", "--tenant", "acme", "--backlog", "--for", "0")
        assert code == 0 and event_id in out and "\x1b" not in out
        # tail follows: a record stored while it runs is printed, the backlog is not (without --backlog)
        result: list[tuple[int, str]] = []
        follower = threading.Thread(
            target=lambda: result.append(
                cli(*target, "tail", "--tenant", "acme", "--interval", "0.5", "--for", "20")
            )
        )
        follower.start()
        time.sleep(2)
        status, _, receipt = post(
            f"{runtime.api_url}/ingest",
            b"a later line",
            {"content-type": "text/plain", "x-tenant-id": "acme"},
        )
        assert status == 202, receipt
        follower.join(60)
        ((code, out),) = result
        assert code == 0 and receipt["event_ids"][0] in out and event_id not in out, out

        # dlq: a poison message, as the queue's redrive policy would leave it
        aws.client("sqs").send_message(QueueUrl=s.dlq_url, MessageBody="not json \x1b]0;owned\x07")
        code, out = cli(*target, "dlq", "show")
        assert code == 0 and "\x1b" not in out and "receives=" in out, out
        code, out = cli(*target, "--json", "dlq", "show")
        assert code == 0 and len(out.splitlines()) == 1 and "\x1b" not in out


def test_the_local_stack_is_found_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with local_stack(tmp_path, "clilocal") as runtime:
        assert runtime.stack is not None
        # GIVEN the operator is somewhere else, with the state dir set once in the environment
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("SLUICE_STATE_DIR", str(tmp_path / "state"))
        code, out = cli("stats")
        assert code == 0 and "no local stack" not in out, out
        code, out = cli("health")
        assert code == 0 and "-> 200" in out, out
