"""Nothing secret in logs: run a representative slice of the pipeline and scan everything it logged.

The local stack runs as its own process (``python -m local run --auth --verbose``: INFO logs and EMF
metrics on, API keys required) with stdout and stderr going to one file, so every line any handler,
the authorizer, the event sources or uvicorn writes is captured without hooking into logging. Then:
API keys are created and used through the authorizer path (valid, unknown and malformed ones), corpus
webhooks and JSON events carrying e-mail addresses (and a card number and a bearer token) are ingested and
stored, items that are refused carry e-mail addresses too, and poison with an e-mail address goes straight
onto the queue. Finally the whole log is searched for every e-mail address, card and token sent and every
plaintext key used: none may appear.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import boto3
import orjson
import pytest

from local.inspect import StackInspector
from local.process import REPO, StackProcess
from tests.support.localkit import post, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
CARD = "4111 1111 1111 1111"
TOKEN = "plantedLogBearerToken0123456789abcdef"


def create_key(state: Path, tenant: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "local", "--state-dir", str(state), "keys", "create", "--tenant", tenant],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return out.stdout.splitlines()[0].strip()


def test_no_email_address_or_api_key_reaches_any_log(tmp_path: Path, corpus: Path) -> None:
    hooks = sorted((corpus / "webhooks" / "github").glob("*.json"))[:25]
    sent_emails: set[bytes] = set()
    state, log = tmp_path / "state", tmp_path / "server.log"
    with StackProcess(state, visibility_timeout=1, run_args=["--auth", "--verbose"], log_path=log) as process:
        stack = process.start()
        api = stack.api_url
        # GIVEN two tenants' API keys, created through the CLI
        keys = {"acme": create_key(state, "acme"), "globex": create_key(state, "globex")}
        unknown = "slk_" + "A" * 43  # well-formed, never issued: the authorizer looks it up and says no
        accepted: set[tuple[str, str]] = set()
        # WHEN corpus webhooks (with the e-mail addresses GitHub puts in them) are posted with a key
        for n, path in enumerate(hooks):
            body = path.read_bytes()
            sent_emails.update(EMAIL.findall(body))
            status, _, receipt = post(f"{api}/events", body, {
                "content-type": "application/json", "authorization": f"Bearer {keys['acme']}",
                "x-github-event": path.name.split(".")[0], "x-github-delivery": f"d-{n}"})  # fmt: skip
            assert status == 202, receipt
            accepted.update(("acme", e) for e in receipt["event_ids"])
        # AND JSON events with personal data, some valid and some refused (not objects, too deep)
        people = [f"person.{i}@example.org".encode() for i in range(20)]
        sent_emails.update(people)
        events = [
            {"type": "signup", "email": p.decode(), "note": f"contact {p.decode()}, card {CARD}",
             "auth": f"Bearer {TOKEN}"} for p in people[:10]
        ]  # fmt: skip
        refused = [p.decode() for p in people[10:15]] + [[[[[p.decode()]]]] for p in people[15:]]
        status, _, receipt = post(f"{api}/events", orjson.dumps([*events, *refused]), {
            "content-type": "application/json", "authorization": f"Bearer {keys['globex']}"})  # fmt: skip
        assert status == 202 and receipt["accepted"] == 10, receipt
        accepted.update(("globex", e) for e in receipt["event_ids"])
        # AND NDJSON where the malformed line holds an address
        status, _, receipt = post(f"{api}/events", b'{"user":"nd@example.net"}\n{"broken": "nd2@example.net"\n',
                                  {"content-type": "application/x-ndjson",
                                   "authorization": f"Bearer {keys['globex']}"})  # fmt: skip
        sent_emails.update({b"nd@example.net", b"nd2@example.net"})
        assert status == 202, receipt
        accepted.update(("globex", e) for e in receipt["event_ids"])
        # AND the wrong credentials: an unknown key, a key for another tenant, a malformed header
        statuses = [
            post(f"{api}/events", b'{"a":1}', {"content-type": "application/json",
                                               "authorization": f"Bearer {unknown}"})[0],
            post(f"{api}/events", b'{"a":1}', {"content-type": "application/json", "x-tenant-id": "acme",
                                               "authorization": f"Bearer {keys['globex']}"})[0],
            post(f"{api}/events", b'{"a":1}', {"content-type": "application/json",
                                               "authorization": f"Basic {keys['acme']}"})[0],
        ]  # fmt: skip
        assert statuses == [403, 403, 403]
        # AND poison carrying an address reaches the queue directly and is dead-lettered by the worker
        sqs = boto3.client("sqs", endpoint_url=stack.endpoint_url, region_name=stack.region)
        sqs.send_message(
            QueueUrl=stack.queue_url, MessageBody='{"v": 1, "kind": "event", "who": "poison@example.com"}'
        )
        sent_emails.add(b"poison@example.com")
        inspect = StackInspector.for_stack(stack)
        assert wait_for(
            lambda: set(inspect.stored_keys()) >= accepted and inspect.depth(stack.dlq_url) == 1, timeout=180
        )
    # THEN the handlers did log (the scan below is not vacuous) ...
    text = log.read_bytes()
    lines = text.count(b"\n")
    assert (
        b'"request ingested"' in text and b"record cannot be stored" in text and b"AuthorizerDenied" in text
    )
    # ... and not one e-mail address sent, nor any plaintext key, is anywhere in it
    leaked_emails = sorted(e.decode() for e in sent_emails if e in text)
    leaked_keys = [name for name, key in {**keys, "unknown": unknown}.items() if key.encode() in text]
    leaked_keys += [name for name, value in {"card": CARD, "token": TOKEN}.items() if value.encode() in text]
    print(f"\nscanned {len(text)} bytes / {lines} lines of logs for {len(sent_emails)} addresses and "
          f"{len(keys) + 1} keys: leaked addresses {leaked_emails}, leaked keys {leaked_keys}")  # fmt: skip
    assert not leaked_emails
    assert not leaked_keys
