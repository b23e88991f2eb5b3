"""Operator procedures on the local stack: replaying the archive onto a stream, redriving the DLQ.

Both go through the CLI (``python -m local replay`` / ``dlq show|redrive``) as an operator would.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections import Counter
from pathlib import Path

import orjson
import pytest

from core.envelope import validate
from core.ids import new_event_id
from local.cli import main
from tests.support.localkit import Sender, inspector, local_stack, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def cli(state: Path, *args: str) -> tuple[int, str]:
    """Run ``python -m local`` in-process; its output (not the handlers' logs) is returned."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["--state-dir", str(state), *args])
    return code, out.getvalue()


def test_replay_puts_the_archived_redacted_records_back_with_the_same_event_ids(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    with local_stack(tmp_path, "replay", visibility_timeout=10) as runtime:
        direct = inspector(runtime)
        # GIVEN 60 records of tenant acme, with e-mail addresses, archived by the archiver
        sender = Sender(runtime.api_url)
        for b in range(3):
            sender.send(
                "acme", f"r-{b}", [{"type": "signup", "email": f"u{b}.{i}@example.com"} for i in range(20)]
            )
        ids = sender.accepted["acme"]
        assert wait_for(lambda: set(direct.archived()) == ids, timeout=180)
        original = direct.stream_envelopes()
        hours = sorted({e["received_at"][:13] for e in original})
        first, last = hours[0], hours[-1]

        # WHEN the operator dry-runs the replay: it counts and puts nothing
        code, out = cli(state, "replay", "--tenant", "acme", "--from", first, "--to", last, "--dry-run")
        assert code == 0 and "would replay 60 record(s)" in out, out
        assert len(direct.stream_ids()) == 60
        # AND then replays for real
        code, out = cli(state, "replay", "--tenant", "acme", "--from", first, "--to", last, "--rate", "1000")
        print(f"\n{out.strip()}")
        assert code == 0 and "replayed 60 record(s)" in out, out
        # AND into a side stream for a consumer that needs a backfill
        direct.client("kinesis").create_stream(StreamName="backfill", ShardCount=1)
        direct.client("kinesis").get_waiter("stream_exists").wait(StreamName="backfill")
        code, out = cli(state, "replay", "--tenant", "acme", "--from", first, "--to", last,
                        "--stream", "backfill")  # fmt: skip
        assert code == 0 and "onto backfill" in out, out
        after = direct.stream_envelopes()
        backfill = direct.stream_envelopes("backfill")
        # AND another tenant's hour is not touched
        code, out = cli(state, "replay", "--tenant", "globex", "--from", first, "--dry-run")
        assert "would replay 0 record(s)" in out

    # THEN the stream holds every record twice: the original and the replayed copy, same event_id
    assert Counter(e["event_id"] for e in after) == {eid: 2 for eid in ids}
    replayed = after[len(original) :]
    # AND the replayed copies are the redacted archive lines: valid envelopes, no e-mail address left
    for env in replayed:
        validate(env)
    assert not EMAIL.findall(orjson.dumps(replayed).decode())
    assert {e["event_id"]: e["received_at"] for e in replayed} == {
        e["event_id"]: e["received_at"] for e in original
    }
    # AND the side stream got exactly one copy of each
    assert sorted(e["event_id"] for e in backfill) == sorted(ids)


def test_dlq_redrive_is_a_dry_run_first_moves_dead_letters_back_and_is_harmless_twice(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    with local_stack(tmp_path, "redrive", visibility_timeout=1) as runtime:
        direct, s = inspector(runtime), runtime.stack
        assert s is not None
        sqs = direct.client("sqs")
        # GIVEN valid envelopes dead-lettered during some past incident (one of them twice, as after an
        # interrupted redrive), and two poison messages
        sender = Sender(runtime.api_url)
        sender.send("acme", "template", [{"type": "order", "n": 1}])
        assert wait_for(lambda: len(direct.stream_envelopes()) == 1, timeout=60)
        # (and stored: the queue must be empty before the dead letters are counted)
        assert wait_for(lambda: len(direct.stored_keys()) == 1 and direct.depth(s.queue_url) == 0, timeout=60)
        template = direct.stream_envelopes()[0]
        letters = [{**template, "tenant_id": "redriven", "event_id": new_event_id()} for _ in range(3)]
        bodies = [orjson.dumps(e).decode() for e in letters]
        poison = ["not json", '{"v": 99}']
        for body in [*bodies, bodies[0], *poison]:
            sqs.send_message(QueueUrl=s.dlq_url, MessageBody=body)
        want = {e["event_id"] for e in letters}

        def redriven() -> list[str]:
            return sorted(e for t, e in direct.stored_keys() if t == "redriven")

        # WHEN the operator looks: every dead letter is listed with its tenant and event id
        code, out = cli(state, "dlq", "show", "--limit", "20")
        assert code == 0 and len(out.strip().splitlines()) == 6, out
        assert all(eid in out for eid in want)
        # AND dry-runs the redrive: it names six messages and moves nothing
        code, out = cli(state, "dlq", "redrive")
        assert "6 message(s) would be moved" in out, out
        assert direct.depth(s.dlq_url) == 6 and direct.depth(s.queue_url) == 0 and redriven() == []
        # AND redrives for real
        code, out = cli(state, "dlq", "redrive", "--yes", "--rate", "100")
        assert "6 message(s) moved" in out, out
        # THEN the valid letters are stored, once each (the duplicate rewrote the same item) ...
        assert wait_for(lambda: redriven() == sorted(want), timeout=120)
        # ... and the poison, failing again, is back in the DLQ after maxReceiveCount receives
        assert wait_for(lambda: direct.depth(s.queue_url) == 0 and direct.depth(s.dlq_url) == 2, timeout=180)
        # WHEN the redrive runs again: it moves only the poison, and stores nothing twice
        code, out = cli(state, "dlq", "redrive", "--yes", "--rate", "100")
        assert "2 message(s) moved" in out, out
        assert wait_for(lambda: direct.depth(s.queue_url) == 0 and direct.depth(s.dlq_url) == 2, timeout=180)
        assert redriven() == sorted(want)
        dead = sqs.receive_message(QueueUrl=s.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30)[
            "Messages"
        ]
        assert sorted(m["Body"] for m in dead) == sorted(poison)
        print(f"\nredrive: {len(want)} valid letters stored once each, {len(poison)} poison back in the DLQ")
