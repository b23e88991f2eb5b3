"""The log-shipper routes end to end through the handler: OTLP/HTTP logs, Loki push, HTTPHandler forms.

Each route decodes with its adapter, goes through the same service (limits, tenant rules, envelope,
idempotency, publish to both sinks) and answers in its protocol's own form, errors included.
"""

from __future__ import annotations

import base64
import gzip
import os
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from typing import Any

import cramjam
import orjson
import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from core.settings import IngestSettings
from ingest import handler
from ingest.protocols import loki
from tests.conftest import REPO
from tests.support.fakes import LambdaContext, MemorySink, http_event, parse_envelope

OTLP = "POST /v1/logs"
LOKI = "POST /loki/api/v1/push"
PROTOBUF = "application/x-protobuf"


class Stack:
    def __init__(self, env: dict[str, str] | None = None, **fail: tuple[str, bool]) -> None:
        self.sqs, self.kinesis = MemorySink("sqs", fail=dict(fail)), MemorySink("kinesis", batch_size=500)
        settings_env = {
            "QUEUE_URL": "q",
            "STREAM_NAME": "s",
            "MAX_RECORDS": "50",
            "MAX_DEPTH": "16",
            **(env or {}),
        }
        from ingest.service import IngestService

        self.service = IngestService(IngestSettings.from_env(settings_env), [self.sqs, self.kinesis])

    def stored(self) -> list[dict[str, Any]]:
        assert set(self.sqs.records) == set(self.kinesis.records)
        return [parse_envelope(text) for text in self.sqs.records.values()]


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    s = Stack()
    monkeypatch.setattr(handler, "service", lambda: s.service)
    yield s


def call(
    route: str, body: bytes, headers: dict[str, str], tenant: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    response = handler.lambda_handler(
        http_event(route, body, headers, authorizer_tenant=tenant), LambdaContext()
    )
    raw = response.get("body") or ""
    data = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()
    return response["statusCode"], {k.lower(): v for k, v in (response.get("headers") or {}).items()}, data


def otlp_request(lines: list[str], depth: int = 0) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="api")))
    scope_logs = resource_logs.scope_logs.add()
    scope_logs.scope.name = "app.orders"
    for i, line in enumerate(lines):
        record = scope_logs.log_records.add()
        record.time_unix_nano = 1_764_590_400_000_000_000 + i * 1000
        record.severity_number = 17
        record.severity_text = "ERROR"
        record.body.string_value = line
        record.attributes.append(KeyValue(key="order", value=AnyValue(int_value=i)))
    if depth:
        record = scope_logs.log_records.add()
        value = AnyValue(string_value="leaf")
        for _ in range(depth):
            outer = AnyValue()
            outer.array_value.values.append(value)
            value = outer
        record.body.CopyFrom(value)
    return request


def otlp_response(data: bytes, content_type: str) -> ExportLogsServiceResponse:
    response = ExportLogsServiceResponse()
    if content_type == "application/json":
        json_format.Parse(data, response)
    else:
        response.ParseFromString(data)
    return response


def loki_json(lines: list[str], labels: dict[str, str] | None = None) -> bytes:
    values = [[str(1_764_590_400_000_000_000 + i), line] for i, line in enumerate(lines)]
    return orjson.dumps({"streams": [{"stream": labels or {"app": "api", "env": "prod"}, "values": values}]})


# --- OTLP ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_json", [False, True])
def test_otlp_export_is_stored_one_log_per_record_and_answered_in_its_encoding(
    stack: Stack, as_json: bool
) -> None:
    request = otlp_request(["first", "second ✓"])
    if as_json:
        body, content_type = orjson.dumps(json_format.MessageToDict(request)), "application/json"
    else:
        body, content_type = request.SerializeToString(), PROTOBUF
    status, headers, data = call(OTLP, body, {"content-type": content_type, "x-tenant-id": "acme"})
    assert status == 200
    assert headers["content-type"] == content_type
    assert not otlp_response(data, content_type).HasField("partial_success")
    records = sorted(stack.stored(), key=lambda r: r["attributes"]["order"])
    assert [r["text"] for r in records] == ["first", "second ✓"]
    first = records[0]
    assert first["tenant_id"] == "acme"
    assert first["kind"] == "log"
    assert first["level"] == "ERROR"
    assert first["source"]["route"] == OTLP
    assert first["source"]["protocol"] == "otlp"
    assert first["client"]["timestamp"] == "2025-12-01T12:00:00.000000Z"
    assert first["attributes"]["resource"] == {"service.name": "api"}
    assert first["attributes"]["scope"] == {"name": "app.orders"}


def test_a_retried_otlp_export_maps_to_the_same_event_ids(stack: Stack) -> None:
    # GIVEN an export whose answer was lost, sent again as OTLP clients do (no id of its own)
    body = otlp_request(["once", "twice"]).SerializeToString()
    call(OTLP, body, {"content-type": PROTOBUF})
    first = set(stack.sqs.records)
    # WHEN it is sent again, gzipped this time THEN the same two records exist, not four
    status, _, _ = call(OTLP, gzip.compress(body), {"content-type": PROTOBUF, "content-encoding": "gzip"})
    assert status == 200
    assert set(stack.sqs.records) == first
    assert len(first) == 2
    assert all(r["client"]["event_id"].startswith("otlp:") for r in stack.stored())


def test_records_that_differ_only_in_their_tenant_get_different_ids(stack: Stack) -> None:
    body = otlp_request(["same"]).SerializeToString()
    call(OTLP, body, {"content-type": PROTOBUF, "x-tenant-id": "acme"})
    call(OTLP, body, {"content-type": PROTOBUF, "x-tenant-id": "globex"})
    assert sorted(r["tenant_id"] for r in stack.stored()) == ["acme", "globex"]


@pytest.mark.parametrize("as_json", [False, True])
def test_otlp_partial_success_names_the_records_refused(stack: Stack, as_json: bool) -> None:
    # GIVEN two good records and one nested deeper than the 16-level limit
    request = otlp_request(["a", "b"], depth=20)
    body = orjson.dumps(json_format.MessageToDict(request)) if as_json else request.SerializeToString()
    content_type = "application/json" if as_json else PROTOBUF
    status, _, data = call(OTLP, body, {"content-type": content_type})
    assert status == 200
    partial = otlp_response(data, content_type).partial_success
    assert partial.rejected_log_records == 1
    assert "record 2: too-deep" in partial.error_message
    assert len(stack.stored()) == 2


def test_otlp_with_every_record_refused_is_200_with_all_rejected(stack: Stack) -> None:
    # The request was valid, its records were not: OTLP says so with partial_success, which clients
    # must not retry, rather than with an error status.
    request = otlp_request([], depth=20)
    status, _, data = call(OTLP, request.SerializeToString(), {"content-type": PROTOBUF})
    assert status == 200
    assert otlp_response(data, PROTOBUF).partial_success.rejected_log_records == 1
    assert stack.stored() == []


def test_an_empty_otlp_export_is_a_success(stack: Stack) -> None:
    status, _, data = call(OTLP, b"", {"content-type": PROTOBUF})
    assert status == 200
    assert not otlp_response(data, PROTOBUF).HasField("partial_success")


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"\xff\xff\xff", {"content-type": PROTOBUF}, 400),
        (b"{not json", {"content-type": "application/json"}, 400),
        (b"\x1f\x8b\x08garbage", {"content-type": PROTOBUF, "content-encoding": "gzip"}, 400),
        (b"{}", {"content-type": "text/plain"}, 415),
        (b"{}", {"content-type": "application/json", "content-encoding": "br"}, 415),
        (b"{}", {"content-type": "application/json", "x-tenant-id": "bad tenant!"}, 400),
    ],
)
def test_otlp_refusals_are_google_rpc_status_in_the_request_encoding(
    stack: Stack, body: bytes, headers: dict[str, str], status: int
) -> None:
    got, response_headers, data = call(OTLP, body, headers)
    assert got == status
    if headers["content-type"] == "application/json":
        assert response_headers["content-type"] == "application/json"
        assert set(orjson.loads(data)) <= {"code", "message"}
        assert orjson.loads(data)["message"]
    else:
        assert response_headers["content-type"] == PROTOBUF
        assert data  # a serialized Status: code and message
    assert stack.stored() == []


def test_otlp_too_many_records_is_413_before_any_envelope(stack: Stack) -> None:
    body = otlp_request([f"line {i}" for i in range(51)]).SerializeToString()
    status, _, _ = call(OTLP, body, {"content-type": PROTOBUF})
    assert status == 413
    assert stack.stored() == []


def test_otlp_decompression_bomb_is_413(stack: Stack) -> None:
    body = gzip.compress(bytes(11 * 1024 * 1024))
    status, _, data = call(OTLP, body, {"content-type": "application/json", "content-encoding": "gzip"})
    assert status == 413
    assert "exceeds" in orjson.loads(data)["message"]


def test_otlp_publish_failure_is_503_with_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    body = otlp_request(["x"]).SerializeToString()
    probe = Stack()
    monkeypatch.setattr(handler, "service", lambda: probe.service)
    call(OTLP, body, {"content-type": PROTOBUF})
    (event_id,) = probe.sqs.records
    failing = Stack({"PUBLISH_BUDGET_SECONDS": "0.2"}, **{event_id: ("ServiceUnavailable", True)})
    monkeypatch.setattr(handler, "service", lambda: failing.service)
    status, headers, _ = call(OTLP, body, {"content-type": PROTOBUF})
    assert status == 503
    assert headers["retry-after"] == "2"
    assert headers["content-type"] == PROTOBUF


def test_otlp_under_api_keys_needs_the_authorizers_tenant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    s = Stack({"AUTH_MODE": "api_key"})
    monkeypatch.setattr(handler, "service", lambda: s.service)
    body = otlp_request(["x"]).SerializeToString()
    assert call(OTLP, body, {"content-type": PROTOBUF})[0] == 401
    assert call(OTLP, body, {"content-type": PROTOBUF}, tenant="acme")[0] == 200
    assert call(OTLP, body, {"content-type": PROTOBUF, "x-tenant-id": "globex"}, tenant="acme")[0] == 403
    assert [r["tenant_id"] for r in s.stored()] == ["acme"]


# --- Loki ---------------------------------------------------------------------------------------


def loki_protobuf(lines: list[str]) -> bytes:
    push = loki._push_request_class()()
    stream = push.streams.add()
    stream.labels = b'{app="api", env="a\\"b"}'
    for i, line in enumerate(lines):
        entry = stream.entries.add()
        entry.timestamp.seconds = 1_764_590_400
        entry.timestamp.nanos = i
        entry.line = line.encode()
    return bytes(cramjam.snappy.compress_raw(push.SerializeToString()))


def test_loki_snappy_protobuf_push_is_204_and_stored(stack: Stack) -> None:
    body = loki_protobuf(["level=info one", "two"])
    status, headers, data = call(
        LOKI, body, {"content-type": PROTOBUF, "content-encoding": "snappy", "x-scope-orgid": "acme"}
    )
    assert (status, data) == (204, b"")
    records = sorted(stack.stored(), key=lambda r: r["text"])
    assert [r["text"] for r in records] == ["level=info one", "two"]
    assert records[0]["attributes"] == {"app": "api", "env": 'a"b'}
    assert records[0]["level"] == "INFO"
    assert {r["tenant_id"] for r in records} == {"acme"}
    assert {r["source"]["protocol"] for r in records} == {"loki"}


def test_loki_json_gzip_push_and_its_retry_are_stored_once(stack: Stack) -> None:
    body = gzip.compress(loki_json(["a", "b", "a"]))
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    assert call(LOKI, body, headers)[0] == 204
    assert call(LOKI, body, headers)[0] == 204
    # Three entries, three timestamps: a retry adds nothing; the two "a" lines differ by their time.
    assert len(stack.stored()) == 3
    # Two truly identical entries of one stream are one, as Loki keeps one of them.
    same = orjson.dumps({"streams": [{"stream": {"app": "x"}, "values": [["5", "dup"], ["5", "dup"]]}]})
    assert call(LOKI, same, {"content-type": "application/json"})[0] == 204
    assert len(stack.stored()) == 4


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{", "application/json", 400),
        (b'{"streams": [{"stream": {"a": "b"}, "values": [["x", "line"]]}]}', "application/json", 400),
        (b"not snappy", PROTOBUF, 400),
        (b"{}", "text/plain", 415),
    ],
)
def test_loki_refusals_are_plain_text(stack: Stack, body: bytes, content_type: str, status: int) -> None:
    got, headers, data = call(LOKI, body, {"content-type": content_type})
    assert got == status
    assert headers["content-type"].startswith("text/plain")
    assert data.endswith(b"\n") and len(data) > 1
    assert stack.stored() == []


def test_loki_partial_refusal_stores_the_rest_and_answers_400_as_loki_does(stack: Stack) -> None:
    body = orjson.dumps({"streams": [{"stream": {"app": "x"}, "values": [["5", "good"], ["bad", "x"]]}]})
    status, headers, data = call(LOKI, body, {"content-type": "application/json"})
    assert status == 400
    assert b"record 1: invalid-timestamp" in data
    assert [r["text"] for r in stack.stored()] == ["good"]


def test_loki_scope_org_id_under_api_keys_must_be_the_keys_tenant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    s = Stack({"AUTH_MODE": "api_key"})
    monkeypatch.setattr(handler, "service", lambda: s.service)
    body = loki_json(["x"])
    ok = call(LOKI, body, {"content-type": "application/json", "x-scope-orgid": "acme"}, tenant="acme")
    assert ok[0] == 204
    status, headers, data = call(
        LOKI, body, {"content-type": "application/json", "x-scope-orgid": "globex"}, tenant="acme"
    )
    assert status == 403
    assert b"acme" not in data and b"globex" not in data
    assert headers["content-type"].startswith("text/plain")
    assert [r["tenant_id"] for r in s.stored()] == ["acme"]


def test_loki_scope_org_id_and_x_tenant_id_must_agree(stack: Stack) -> None:
    headers = {"content-type": "application/json", "x-scope-orgid": "acme", "x-tenant-id": "globex"}
    assert call(LOKI, loki_json(["x"]), headers)[0] == 400


def test_scope_org_id_is_loki_s_header_only(stack: Stack) -> None:
    # Other routes never read it: a client sending it elsewhere sees the behaviour it always saw.
    headers = {"content-type": "application/json", "x-scope-orgid": "acme"}
    assert call("POST /events", b'{"a": 1}', headers)[0] == 202
    assert stack.stored()[0]["tenant_id"] == "default"


def test_loki_too_many_entries_is_413(stack: Stack) -> None:
    assert call(LOKI, loki_json([str(i) for i in range(51)]), {"content-type": "application/json"})[0] == 413


# --- HTTPHandler forms on /ingest ---------------------------------------------------------------


def test_stdlib_http_handler_form_on_ingest(stack: Stack) -> None:
    fields = {"msg": "user %s logged in", "args": "('bob',)", "levelname": "WARNING", "name": "auth",
              "created": "1764590400.25", "lineno": "42", "funcName": "login"}  # fmt: skip
    body = urllib.parse.urlencode(fields).encode()
    status, _, data = call("POST /ingest", body, {"content-type": "application/x-www-form-urlencoded"})
    assert status == 202
    assert orjson.loads(data)["accepted"] == 1
    (record,) = stack.stored()
    assert record["text"] == "user bob logged in"
    assert record["level"] == "WARNING"
    assert record["source"] == {**record["source"], "route": "POST /ingest", "protocol": "form"}
    assert record["attributes"]["name"] == "auth"
    assert record["attributes"]["lineno"] == 42
    assert record["client"]["timestamp"] == "2025-12-01T12:00:00.250000Z"


def test_the_native_routes_record_their_protocol(stack: Stack) -> None:
    assert call("POST /events", b'{"a": 1}', {"content-type": "application/json"})[0] == 202
    assert stack.stored()[0]["source"]["protocol"] == "sluice"


# --- any bytes: never a 5xx ---------------------------------------------------------------------

_ROUTES = st.sampled_from([OTLP, LOKI, "POST /ingest"])
_TYPES = st.sampled_from(
    [PROTOBUF, "application/json", "application/x-www-form-urlencoded", "text/plain", ""]
)
_ENCODINGS = st.sampled_from(["", "gzip", "snappy", "br"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=_ROUTES, body=st.binary(max_size=400), content_type=_TYPES, encoding=_ENCODINGS)
def test_any_bytes_on_the_protocol_routes_are_2xx_or_4xx(
    stack: Stack, route: str, body: bytes, content_type: str, encoding: str
) -> None:
    headers = {"content-type": content_type}
    if encoding:
        headers["content-encoding"] = encoding
    status, _, _ = call(route, body, headers)
    assert 200 <= status < 500, (route, body, content_type, encoding, status)


@pytest.mark.parametrize("route", [OTLP, LOKI])
def test_events_route_never_imports_protobuf_opentelemetry_or_cramjam(route: str) -> None:
    # Cold starts pay for every module imported up front; the decoders belong to their own routes.
    code = (
        "import sys; from ingest import handler; from core.settings import IngestSettings; "
        "from ingest.service import IngestService; from tests.support.fakes import LambdaContext, MemorySink, "
        "http_event; svc = IngestService(IngestSettings.from_env({'QUEUE_URL': 'q', 'STREAM_NAME': 's'}), "
        "[MemorySink('a'), MemorySink('b')]); handler.service = lambda: svc; "
        "r = handler.lambda_handler(http_event('POST /events', '{}'), LambdaContext()); "
        "assert r['statusCode'] == 202, r; "
        "print('LOADED=' + ','.join(m for m in ('google.protobuf', 'opentelemetry', 'cramjam', 'ingest.protocols.otlp', "
        "'ingest.protocols.loki', 'ingest.protocols.form') if m in sys.modules)); "
        f"r = handler.lambda_handler(http_event({route!r}, b'', {{'content-type': 'application/json'}}), "
        "LambdaContext()); print('STATUS=' + str(r['statusCode']))"
    )
    env = {**os.environ, "POWERTOOLS_METRICS_DISABLED": "true"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "LOADED=" in lines
    status = next(line for line in lines if line.startswith("STATUS="))
    assert 400 <= int(status.removeprefix("STATUS=")) < 500


@pytest.mark.parametrize("protocol", ["otlp", "loki", "form"])
def test_protocol_records_are_redacted_before_the_queue_and_the_stream(stack: Stack, protocol: str) -> None:
    # GIVEN a record carrying an e-mail address and a card number, sent by each log-shipper protocol
    line = "payment by ada@example.com with 4111 1111 1111 1111 failed"
    if protocol == "otlp":
        request = (OTLP, otlp_request([line]).SerializeToString(), {"content-type": PROTOBUF})
    elif protocol == "loki":
        request = (LOKI, loki_json([line]), {"content-type": "application/json"})
    else:
        form = urllib.parse.urlencode({"msg": line, "levelname": "ERROR", "created": "1764590400.5"})
        request = ("POST /ingest", form.encode(), {"content-type": "application/x-www-form-urlencoded"})
    # WHEN it is accepted
    assert call(*request)[0] in (200, 204, 202)
    # THEN neither the queue nor the stream ever held the secret (ingest-side redaction is on by default)
    bodies = [*stack.sqs.records.values(), *stack.kinesis.records.values()]
    assert bodies and all("ada@example.com" not in b and "4111 1111 1111 1111" not in b for b in bodies)
    assert {r["source"]["protocol"] for r in stack.stored()} == {protocol}
