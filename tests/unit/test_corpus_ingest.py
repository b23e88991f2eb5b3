"""Real inputs nobody here wrote: every GitHub webhook and every log line of the shared corpus is accepted."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from core import redaction
from core.envelope import redact_envelope
from core.settings import IngestSettings
from ingest import handler
from ingest.service import IngestService
from tests.support.fakes import LambdaContext, MemorySink, http_event, parse_envelope


def _sinks(monkeypatch: pytest.MonkeyPatch, redaction: str) -> tuple[MemorySink, MemorySink]:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    sqs, kinesis = MemorySink("sqs"), MemorySink("kinesis", batch_size=500)
    env = {"QUEUE_URL": "q", "STREAM_NAME": "s", "INGEST_REDACTION": redaction}
    service = IngestService(IngestSettings.from_env(env), [sqs, kinesis])
    monkeypatch.setattr(handler, "service", lambda: service)
    return sqs, kinesis


@pytest.fixture
def sinks(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MemorySink, MemorySink]]:
    # Ingest-side redaction off: these tests pin what normalization keeps of real inputs, byte for byte.
    # What redaction does to the same inputs is the business of the tests below and of test_redaction.py.
    yield _sinks(monkeypatch, "off")


@pytest.fixture
def redacting(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MemorySink, MemorySink]]:
    yield _sinks(monkeypatch, "on")


def _corpus_requests(corpus: Path) -> Iterator[tuple[str, bytes, dict[str, str]]]:
    for number, path in enumerate(sorted((corpus / "webhooks" / "github").glob("*.json"))):
        headers = {"x-github-event": path.name.split(".", 1)[0], "x-github-delivery": f"delivery-{number}"}
        yield "POST /events", path.read_bytes(), headers
    for path in sorted((corpus / "logs").glob("*.log")):
        lines = [line for line in path.read_text("utf-8", "replace").splitlines() if line.strip()]
        for start in range(0, len(lines), 1000):
            yield (
                "POST /ingest",
                "\n".join(lines[start : start + 1000]).encode(),
                {"content-type": "text/plain"},
            )


def test_ingest_redaction_is_the_consumers_redaction_and_idempotent_on_the_corpus(
    corpus: Path, redacting: tuple[MemorySink, MemorySink], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN every corpus webhook and log line, ingested with and without ingest-side redaction
    rules = redaction.load()
    sqs, kinesis = redacting
    requests = list(_corpus_requests(corpus))
    ids = [i for r in requests for i in post(*r)[1]["event_ids"]]  # type: ignore[attr-defined]
    assert sqs.records == kinesis.records
    raw_sqs, _ = _sinks(monkeypatch, "off")
    raw_ids = [i for r in requests for i in post(*r)[1]["event_ids"]]  # type: ignore[attr-defined]
    assert len(ids) == len(raw_ids) == len(sqs.records) == len(raw_sqs.records)
    for event_id, raw_id in zip(ids, raw_ids, strict=True):
        text = sqs.records[event_id]
        published = parse_envelope(text)
        # THEN each published record is what the consumers' redaction makes of the raw one
        raw = parse_envelope(raw_sqs.records[raw_id])
        expected = redact_envelope(raw, rules)[0]
        assert published == {**expected, "event_id": event_id, "received_at": published["received_at"]}
        # AND the consumers' pass over it changes nothing and counts nothing (idempotent)
        assert redact_envelope(published, rules, text) == (published, {}), event_id


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
