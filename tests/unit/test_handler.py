"""The ingest Lambda handler: routes, problem documents, and the never-a-5xx property."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.settings import IngestSettings
from ingest import handler
from ingest.service import IngestService
from tests.support.fakes import LambdaContext, MemorySink, http_event

SETTINGS = IngestSettings.from_env(
    {"QUEUE_URL": "q", "STREAM_NAME": "s", "MAX_BODY_BYTES": "65536", "MAX_DECOMPRESSED_BYTES": "262144"}
)


@pytest.fixture(autouse=True)
def memory_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[IngestService]:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    service = IngestService(SETTINGS, [MemorySink("sqs"), MemorySink("kinesis", batch_size=500)])
    monkeypatch.setattr(handler, "service", lambda: service)
    yield service


def call(event: dict[str, object]) -> tuple[int, dict[str, str], dict[str, object]]:
    response = handler.lambda_handler(event, LambdaContext())
    headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
    return response["statusCode"], headers, orjson.loads(response["body"])


def test_post_events_answers_202_with_a_receipt() -> None:
    status, headers, body = call(http_event("POST /events", '[{"a":1},{"a":2}]'))
    assert status == 202
    assert headers["content-type"] == "application/json"
    assert body["accepted"] == 2 and len(body["event_ids"]) == 2 and body["errors"] == []
    assert body["request_id"] == "JKJaXmPLvHcESHA="


def test_post_ingest_takes_gzip_text_sent_base64() -> None:
    event = http_event(
        "POST /ingest",
        gzip.compress(b"one\ntwo\n"),
        {"content-type": "text/plain", "content-encoding": "gzip"},
    )
    status, _, body = call(event)
    assert (status, body["accepted"]) == (202, 2)


@pytest.mark.parametrize(
    ("event", "status", "code"),
    [
        (http_event("POST /events", "{"), 400, "invalid-json"),
        (http_event("POST /events", None), 400, "empty-body"),
        (http_event("POST /events", "x", {"content-type": "text/plain"}), 415, "unsupported-media-type"),
        (
            http_event("POST /ingest", "x", {"content-type": "text/plain; charset=rot13"}),
            415,
            "unsupported-media-type",
        ),
        (
            http_event("POST /ingest", "\\[", {"content-type": "text/plain; charset=unicode_escape"}),
            415,
            "unsupported-media-type",
        ),
        (http_event("POST /events", "[1]"), 422, "all-items-invalid"),
        (http_event("POST /events", "x" * 70000), 413, "body-too-large"),
        (http_event("POST /nowhere", "{}"), 404, "not-found"),
    ],
)
def test_errors_are_problem_documents(event: dict[str, object], status: int, code: str) -> None:
    got_status, headers, body = call(event)
    assert (got_status, body["code"], body["status"]) == (status, code, status)
    assert headers["content-type"] == "application/problem+json"
    assert body["type"].endswith("/" + code) and body["title"] and body["detail"]


def test_health_makes_no_aws_call(memory_service: IngestService) -> None:
    status, _, body = call(http_event("GET /health", None))
    assert (status, body) == (200, {"status": "ok"})
    assert all(sink.calls == 0 for sink in memory_service.sinks)  # type: ignore[attr-defined]


def test_openapi_document_is_served() -> None:
    status, _, body = call(http_event("GET /openapi.json", None))
    assert status == 200 and body["openapi"].startswith("3.")


def test_unexpected_error_is_a_500_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> IngestService:
        raise RuntimeError("bug")

    monkeypatch.setattr(handler, "service", boom)
    status, _, body = call(http_event("POST /events", "{}"))
    assert (status, body["code"]) == (500, "internal-error")


@pytest.fixture
def log_lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """What the ingest Logger writes, instead of stdout."""
    stream = io.StringIO()
    monkeypatch.setattr(handler.logger.registered_handler, "stream", stream)
    yield stream


def test_an_unexpected_error_is_logged_as_one_structured_line(
    monkeypatch: pytest.MonkeyPatch, log_lines: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a failure the handler does not expect
    def boom() -> IngestService:
        raise LookupError("unknown encoding: rot13")

    monkeypatch.setattr(handler, "service", boom)
    # WHEN a request meets it
    status, _, body = call(http_event("POST /events", "{}"))
    # THEN the client gets a 500 problem and the log a JSON error line naming the exception
    assert (status, body["code"]) == (500, "internal-error")
    lines = [orjson.loads(line) for line in log_lines.getvalue().splitlines()]
    errors = [line for line in lines if line["level"] == "ERROR"]
    assert [e["message"] for e in errors] == ["unhandled error"]
    assert errors[0]["exception_name"] == "LookupError" and "rot13" in errors[0]["exception"]
    assert "Logging error" not in capsys.readouterr().err


def test_the_ingest_logger_serializes_any_value(log_lines: io.StringIO) -> None:
    handler.logger.error("failed", extra={"error": LookupError("unknown encoding: rot13"), "at": object})
    line = orjson.loads(log_lines.getvalue())
    assert line["error"] == "unknown encoding: rot13" and line["at"] == str(object)


CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/x-ndjson",
        "text/plain",
        "text/plain; charset=latin-1",
        "text/plain; charset=rot13",
        "text/plain; charset=unicode_escape",
        "",
        "image/png",
        "application/json; charset=utf-16",
        "application/vnd.api+json",
    ]
)
ENCODINGS = st.sampled_from([None, "gzip", "identity", "br", "gzip, gzip"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    route=st.sampled_from(["POST /events", "POST /ingest"]),
    body=st.one_of(
        st.binary(max_size=2048),
        st.builds(lambda b: gzip.compress(b), st.binary(max_size=1024)),
        st.builds(
            lambda d: orjson.dumps(d),
            st.recursive(
                st.none()
                | st.booleans()
                | st.integers(-(2**63), 2**64 - 1)
                | st.floats(allow_nan=False, allow_infinity=False)
                | st.text(max_size=20),
                lambda children: (
                    st.lists(children, max_size=4)
                    | st.dictionaries(st.text(max_size=8), children, max_size=4)
                ),
                max_leaves=30,
            ),
        ),
    ),
    content_type=CONTENT_TYPES,
    encoding=ENCODINGS,
    as_base64=st.booleans(),
)
def test_any_body_gives_2xx_or_a_4xx_problem_never_5xx(
    route: str, body: bytes, content_type: str, encoding: str | None, as_base64: bool
) -> None:
    headers = {"content-type": content_type}
    if encoding:
        headers["content-encoding"] = encoding
    if as_base64:
        event = http_event(route, body, headers, base64_encode=True)
    else:
        event = http_event(route, body.decode("utf-8", "surrogateescape"), headers)
    status, response_headers, doc = call(event)
    assert status == 202 or 400 <= status < 500, doc
    if status != 202:
        assert response_headers["content-type"] == "application/problem+json"
        assert doc["status"] == status and doc["code"]


def test_ingest_side_redactions_become_metrics_of_the_ingest_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the metrics the handler adds, recorded
    added: list[tuple[str, float]] = []
    monkeypatch.setattr(handler.metrics, "add_metric", lambda name, unit, value: added.append((name, value)))
    # WHEN records carrying two e-mail addresses and a password field are accepted
    body = orjson.dumps([{"who": "a@example.com"}, {"who": "b@example.com", "password": "hunter2"}])
    assert call(http_event("POST /events", body))[0] == 202
    # THEN the replacements are counted per rule, as the worker and the archiver count theirs
    assert ("Redactions_email", 2) in added
    assert ("Redactions_credential_field", 1) in added
