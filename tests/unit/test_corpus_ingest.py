"""Real inputs nobody here wrote: every GitHub webhook and every log line of the shared corpus is accepted."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from core.settings import IngestSettings
from ingest import handler
from ingest.service import IngestService
from tests.support.fakes import LambdaContext, MemorySink, http_event, parse_envelope


@pytest.fixture
def sinks(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MemorySink, MemorySink]]:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    sqs, kinesis = MemorySink("sqs"), MemorySink("kinesis", batch_size=500)
    service = IngestService(IngestSettings.from_env({"QUEUE_URL": "q", "STREAM_NAME": "s"}), [sqs, kinesis])
    monkeypatch.setattr(handler, "service", lambda: service)
    yield sqs, kinesis


def post(route: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    response = handler.lambda_handler(http_event(route, body, headers), LambdaContext())
    return response["statusCode"], orjson.loads(response["body"])


def test_every_github_webhook_is_accepted_with_its_event_type(
    corpus: Path, sinks: tuple[MemorySink, MemorySink]
) -> None:
    files = sorted((corpus / "webhooks" / "github").glob("*.json"))
    assert files, "no webhook bodies in the corpus"
    sqs, kinesis = sinks
    for number, path in enumerate(files):
        event_name = path.name.split(".", 1)[0]
        headers = {
            "content-type": "application/json",
            "x-github-event": event_name,
            "x-github-delivery": f"delivery-{number}",
            "user-agent": "GitHub-Hookshot/044aadd",
        }
        status, receipt = post("POST /events", path.read_bytes(), headers)
        assert status == 202, (path.name, receipt)
        record = parse_envelope(sqs.records[receipt["event_ids"][0]])
        payload = orjson.loads(path.read_bytes())
        assert record["payload"] == payload
        action = payload.get("action")
        assert record["type"] == (f"{event_name}.{action}" if action else event_name)
        assert record["client"]["event_id"] == f"delivery-{number}#0"
    assert len(sqs.records) == len(kinesis.records) == len(files)


def test_every_log_line_is_accepted_as_text(corpus: Path, sinks: tuple[MemorySink, MemorySink]) -> None:
    sqs, _ = sinks
    for path in sorted((corpus / "logs").glob("*.log")):
        raw = path.read_bytes()
        expected = [
            line.removesuffix("\r") for line in raw.decode("utf-8", "replace").split("\n") if line.strip()
        ]
        accepted: list[str] = []
        for start in range(0, len(expected), 1000):  # the per-request record limit
            body = "\n".join(expected[start : start + 1000]).encode()
            status, receipt = post(
                "POST /ingest",
                gzip.compress(body),
                {"content-type": "text/plain", "content-encoding": "gzip"},
            )
            assert status == 202, (path.name, receipt)
            assert receipt["rejected"] == 0
            accepted.extend(receipt["event_ids"])  # type: ignore[arg-type]
        assert [parse_envelope(sqs.records[i])["text"] for i in accepted] == expected, path.name
