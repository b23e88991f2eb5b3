"""End to end on the real local stack (emulator server, HTTP server, event sources): nothing accepted is lost.

A few thousand records of every kind go in through HTTP: corpus logs as gzip text, every corpus webhook,
JSON and NDJSON batches, duplicates with the same client identity, invalid items; poison messages go
straight onto the queue. The test then proves: every accepted id is in DynamoDB exactly once and
redacted, every accepted id is on the stream, the poison is in the DLQ, and nothing else is anywhere.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from local.cli import main
from local.inspect import stored_record_of
from local.runtime import LocalRuntime
from tests.support import fault_handlers
from tests.support.localkit import inspector, local_stack, wait_for
from tests.support.localkit import post as post_raw

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalRuntime]:
    with local_stack(tmp_path, "e2e", visibility_timeout=2) as runtime:
        yield runtime


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    status, _, parsed = post_raw(url, body, headers)
    return status, parsed


class Ledger:
    """What the API said it accepted, per tenant."""

    def __init__(self) -> None:
        self.ids: dict[str, set[str]] = defaultdict(set)
        self.requests = 0

    def accept(self, tenant: str, status: int, receipt: dict[str, Any], expect: int | None = None) -> None:
        assert status == 202, receipt
        if expect is not None:
            assert receipt["accepted"] == expect, receipt
        self.ids[tenant].update(receipt["event_ids"])
        self.requests += 1

    @property
    def all(self) -> set[str]:
        return set().union(*self.ids.values())


def readable(item: dict[str, Any]) -> str:
    """An item's text with its body unpacked from any storage form, so scans see what is stored."""
    return orjson.dumps(stored_record_of(item)).decode()


def test_every_accepted_record_lands_once_and_poison_reaches_the_dlq(
    stack: LocalRuntime, corpus: Path
) -> None:
    api, s = stack.api_url, stack.stack
    assert s is not None
    direct = inspector(stack)
    ledger = Ledger()
    # GIVEN real log lines from every corpus file, gzip text/plain, in requests of up to 500 lines
    for path in sorted((corpus / "logs").glob("*.log")):
        lines = [ln for ln in path.read_bytes().split(b"\n") if ln.strip()][:600]
        for start in range(0, len(lines), 500):
            chunk = lines[start : start + 500]
            status, receipt = post(f"{api}/ingest", gzip.compress(b"\n".join(chunk)), {
                "content-type": "text/plain", "content-encoding": "gzip", "x-tenant-id": "logs"})  # fmt: skip
            ledger.accept("logs", status, receipt, expect=len(chunk))
    # AND every GitHub webhook, each delivered twice with the same delivery id (a webhook retry)
    for n, path in enumerate(sorted((corpus / "webhooks" / "github").glob("*.json"))):
        headers = {"content-type": "application/json", "x-github-event": path.name.split(".")[0],
                   "x-github-delivery": f"delivery-{n}", "x-tenant-id": "hooks"}  # fmt: skip
        first = post(f"{api}/events", path.read_bytes(), headers)
        again = post(f"{api}/events", path.read_bytes(), headers)
        assert first[1]["event_ids"] == again[1]["event_ids"]
        ledger.accept("hooks", *first, expect=1)
    # AND JSON batches with personal data, one of them retried with the same Idempotency-Key
    for batch in range(4):
        events = [{"type": "signup", "n": i, "email": f"user{batch}.{i}@example.com", "card": "4111-1111-1111-1111"}
                  for i in range(100)]  # fmt: skip
        headers = {
            "content-type": "application/json",
            "x-tenant-id": "apps",
            "idempotency-key": f"batch-{batch}",
        }
        ledger.accept("apps", *post(f"{api}/events", orjson.dumps(events), headers), expect=100)
        if batch == 0:
            again = post(f"{api}/events", orjson.dumps(events), headers)
            assert set(again[1]["event_ids"]) <= ledger.ids["apps"]
    # AND gzip NDJSON with invalid items mixed in: the valid ones are accepted, the others refused by index
    ndjson = b"\n".join([b'{"type":"click","i":1}', b"{broken", b"[1,2]", b'{"type":"click","i":2}'])
    status, receipt = post(f"{api}/events", gzip.compress(ndjson), {
        "content-type": "application/x-ndjson", "content-encoding": "gzip", "x-tenant-id": "apps"})  # fmt: skip
    ledger.accept("apps", status, receipt, expect=2)
    assert [(e["index"], e["code"]) for e in receipt["errors"]] == [(1, "invalid-json"), (2, "not-an-object")]
    # AND poison that reached the queue without the API (a foreign producer): not JSON, and not an envelope
    sqs = direct.client("sqs")
    poison = [
        "not json at all",
        '{"v": 99, "kind": "event"}',
        orjson.dumps({"v": 1, "kind": "alien"}).decode(),
    ]
    for body in poison:
        sqs.send_message(QueueUrl=s.queue_url, MessageBody=body)

    # WHEN the pipeline drains (the queue is empty and the poison has been moved to the DLQ)
    accepted = ledger.all
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if direct.depth(s.queue_url) == 0 and direct.depth(s.dlq_url) == len(poison):
            break
        time.sleep(2)
    items = direct.stored_items()
    stats = stack.stats()
    print(f"\naccepted {len(accepted)} records in {ledger.requests} requests; stored {len(items)}; "
          f"dlq {direct.depth(s.dlq_url)}; sources {stats}")  # fmt: skip

    # THEN every accepted record is stored exactly once, under its tenant, and nothing else is stored
    keys = [(i["tenant_id"]["S"], i["event_id"]["S"]) for i in items]
    assert len(keys) == len(set(keys))
    assert {k for k in keys} == {(t, e) for t, ids in ledger.ids.items() for e in ids}
    # AND no e-mail address survived into storage (gzipped bodies included)
    assert any("body_gz" in i for i in items), "expected some bodies stored compact"
    leaked = {m for i in items for m in EMAIL.findall(readable(i))}
    assert not leaked, sorted(leaked)[:5]
    # AND every accepted record is on the stream (at least once)
    assert accepted <= set(direct.stream_ids())
    # AND the poison, and only the poison, is in the DLQ
    dead = []
    while True:
        got = sqs.receive_message(QueueUrl=s.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30).get(
            "Messages", []
        )
        if not got:
            break
        dead.extend(m["Body"] for m in got)
    assert sorted(dead) == sorted(poison)


def test_the_demo_posts_synthetic_data_and_finds_it_stored(stack: LocalRuntime, tmp_path: Path) -> None:
    # GIVEN a running stack and no corpus to post (a plain clone)
    out = io.StringIO()
    # WHEN `python -m local demo` runs against it
    with contextlib.redirect_stdout(out):
        code = main(["--state-dir", str(tmp_path / "state"), "demo", "--url", stack.api_url,
                     "--corpus", str(tmp_path / "no-corpus"), "--seed", "7"])  # fmt: skip
    text = out.getvalue()
    print(f"\n{text}")
    # THEN it said it posted synthetic data, every webhook and log line was accepted ...
    assert code == 0, text
    assert "posting synthetic GitHub webhooks and Apache/syslog lines" in text
    assert text.count("-> 202 1") == 4, text
    assert "200 log lines, gzip" in text and "-> 202 accepted 200" in text
    # ... and every accepted record (4 webhooks, 200 lines, 2 valid NDJSON lines) is stored, redacted
    assert "206 of 206 accepted records are in DynamoDB" in text
    items = inspector(stack).stored_items()
    assert len(items) == 206 and {i["tenant_id"]["S"] for i in items} == {"demo"}
    assert not {m for i in items for m in EMAIL.findall(readable(i))}


PLANTED = {
    "email": "planted.person@example.com",
    "card": "4111 1111 1111 1111",
    "token": "plantedBearerTokenValue0123456789abcdef",
}


def test_planted_secrets_are_nowhere_at_rest(tmp_path: Path) -> None:
    # GIVEN a stack whose worker records every queue body it is handed and dead-letters tagged records
    fault_handlers.QUEUE_BODIES.clear()
    with local_stack(tmp_path, "e2e-secrets", visibility_timeout=1,
                     handlers={"worker": "tests.support.fault_handlers.recording_worker_handler"}) as runtime:  # fmt: skip
        api, s = runtime.api_url, runtime.stack
        assert s is not None
        direct = inspector(runtime)
        email, card, token = PLANTED["email"], PLANTED["card"], PLANTED["token"]
        # WHEN an e-mail address, a card number and a bearer token are sent in events, a log line and a
        # log object, one event of them tagged to end in the DLQ
        events = [
            {"type": "signup", "email": email, "note": f"paid with {card}", "auth": f"Bearer {token}"},
            {"type": f"mail {email}", "headers": {"Authorization": f"Bearer {token}"}, "card": card},
            {
                "type": "poison",
                "tag": fault_handlers.DEAD_LETTER_TAG,
                "note": f"{email} {card} Bearer {token}",
            },
        ]
        line = f"ERROR payment failed for {email} card {card} Authorization: Bearer {token}"
        accepted: set[str] = set()
        for route, body, content_type in [
            ("events", orjson.dumps(events), "application/json"),
            ("ingest", line.encode(), "text/plain"),
            ("ingest", orjson.dumps({"message": line, "user": email}), "application/json"),
        ]:
            status, receipt = post(
                f"{api}/{route}", body, {"content-type": content_type, "x-tenant-id": "sec"}
            )
            assert status == 202, receipt
            accepted.update(receipt["event_ids"])
        # THEN once the tagged record is dead-lettered and the others are stored and archived
        stream = direct.stream_data()
        doomed = {orjson.loads(d)["event_id"] for d in stream if fault_handlers.DEAD_LETTER_TAG.encode() in d}
        assert len(doomed) == 1
        assert wait_for(
            lambda: (
                direct.depth(s.dlq_url) == 1
                and {k[1] for k in direct.stored_keys()} >= accepted - doomed
                and set(direct.archived()) >= accepted
            ),
            timeout=180,
        )
        dead = direct.sqs.receive_message(QueueUrl=s.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30)
        places = {
            "queue": list(fault_handlers.QUEUE_BODIES),
            "stream": [d.decode() for d in direct.stream_data()],
            "dlq": [m["Body"] for m in dead.get("Messages", [])],
            "storage": [readable(i) for i in direct.stored_items()],
            "archive": [orjson.dumps(line).decode() for line in direct.archive_lines()],
        }
    # every place holds the records (the scan is not vacuous) and no planted value
    assert all(places.values()), {k: len(v) for k, v in places.items()}
    leaked = {(where, name) for where, texts in places.items() for text in texts
              for name, value in PLANTED.items() if value in text}  # fmt: skip
    assert not leaked, sorted(leaked)
