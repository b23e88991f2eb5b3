"""local/synthetic.py: realistic GitHub deliveries and log lines for a clone without ../shared/corpus."""

from __future__ import annotations

import random
import re
from pathlib import Path

import orjson
import pytest

from local import synthetic
from local.cli import demo_data, main

IP = re.compile(r"\b(?:192\.0\.2|198\.51\.100|203\.0\.113)\.\d{1,3}\b")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# What tells each GitHub event apart in its body (the keys GitHub documents for it).
SHAPES = {
    "push": {"ref", "before", "after", "commits", "head_commit", "pusher", "repository", "sender"},
    "issues": {"action", "issue", "repository", "sender"},
    "pull_request": {"action", "number", "pull_request", "repository", "sender"},
    "ping": {"zen", "hook_id", "hook", "repository", "sender"},
}


@pytest.mark.parametrize("event", synthetic.GITHUB_EVENTS)
def test_github_deliveries_have_the_shape_of_their_event(event: str) -> None:
    delivery = synthetic.github_delivery(random.Random(1), event)
    body = orjson.loads(delivery.body)
    assert delivery.event == event
    assert SHAPES[event] <= body.keys()
    assert (
        body["repository"]["full_name"]
        == f"{body['repository']['owner']['login']}/{body['repository']['name']}"
    )


def test_push_deliveries_carry_the_commit_authors_email_addresses() -> None:
    body = orjson.loads(synthetic.github_delivery(random.Random(2), "push").body)
    assert all(EMAIL.fullmatch(c["author"]["email"]) for c in body["commits"])
    assert body["head_commit"] == body["commits"][-1] and body["after"] == body["commits"][-1]["id"]


def test_the_same_seed_gives_the_same_data() -> None:
    now = 1_764_590_400.0
    first = [
        synthetic.github_delivery(random.Random(3), now=now),
        synthetic.log_lines(random.Random(3), 50, now),
    ]
    again = [
        synthetic.github_delivery(random.Random(3), now=now),
        synthetic.log_lines(random.Random(3), 50, now),
    ]
    assert first == again


def test_log_lines_mix_apache_and_syslog_with_ips_and_email_addresses() -> None:
    lines = synthetic.log_lines(random.Random(4), 300)
    assert len(lines) == 300 and all(line.strip() and "\n" not in line for line in lines)
    assert any(line.startswith("[") and "] [error]" in line for line in lines)  # Apache error log
    assert any(' "GET ' in line or ' "POST ' in line for line in lines)  # Apache access log
    assert any(" sshd[" in line for line in lines) and any(" postfix/" in line for line in lines)  # syslog
    assert sum(bool(IP.search(line)) for line in lines) > 150
    assert sum(bool(EMAIL.search(line.replace("%40", "@"))) for line in lines) > 30
    # only documentation addresses: nothing real is named
    assert all(m.split("@")[1].endswith(("example.com", "example.org", "example.net")) for line in lines
               for m in EMAIL.findall(line.replace("%40", "@")))  # fmt: skip


def test_the_demo_posts_synthetic_data_when_the_corpus_is_absent(tmp_path: Path) -> None:
    data = demo_data(tmp_path / "no-corpus", seed=5)
    assert data.source.startswith("synthetic") and "not found" in data.source
    assert [event for _, event, _ in data.webhooks] == ["issues", "push", "pull_request", "ping"]
    assert len(data.log_lines) == 200


def test_the_demo_posts_the_corpus_when_it_is_there(corpus: Path) -> None:
    data = demo_data(corpus)
    assert data.source == f"the shared corpus at {corpus}"
    assert [event for _, event, _ in data.webhooks] == ["issues", "push", "ping"]
    assert demo_data(corpus, synthetic=True).source.startswith("synthetic")


def test_the_cli_prints_synthetic_data_for_curl(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synthetic", "logs", "--count", "5", "--seed", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5
    assert main(["synthetic", "push", "--seed", "1"]) == 0
    assert SHAPES["push"] <= orjson.loads(capsys.readouterr().out).keys()
