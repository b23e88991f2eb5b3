"""OTLP/HTTP logs adapter: the spec's published examples, protobuf round trips, encoders, malformed input."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.protobuf import json_format
from google.protobuf.empty_pb2 import Empty
from google.protobuf.unknown_fields import UnknownFieldSet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from ingest.problems import ItemError
from ingest.protocols import otlp
from ingest.protocols.records import Decoded, DecodedRecord, ProtocolError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "protocols"
TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")


def otlp_json(request: ExportLogsServiceRequest) -> bytes:
    """The OTLP JSON form of a request, as an exporter writes it: proto3 JSON with hex ids."""
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    for resource_logs in document.get("resourceLogs", []):
        for scope_logs in resource_logs.get("scopeLogs", []):
            for record in scope_logs.get("logRecords", []):
                for name in ("traceId", "spanId"):
                    if name in record:
                        record[name] = base64.b64decode(record[name]).hex().upper()
    return orjson.dumps(document)


def kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def sample_request() -> ExportLogsServiceRequest:
    """Two resources, two scopes, every AnyValue kind, ids, severities by text and by number only."""
    request = ExportLogsServiceRequest()
    first = request.resource_logs.add()
    first.resource.attributes.append(kv("service.name", AnyValue(string_value="checkout")))
    scope_logs = first.scope_logs.add()
    scope_logs.scope.name = "checkout.http"
    scope_logs.scope.version = "2.1"
    scope_logs.log_records.append(
        LogRecord(
            time_unix_nano=1_700_000_000_123_456_789,
            observed_time_unix_nano=1_700_000_001_000_000_000,
            severity_number=17,
            severity_text="ERROR",
            body=AnyValue(string_value="payment failed for ana@example.com ✓"),
            attributes=[
                kv("http.status_code", AnyValue(int_value=502)),
                kv("retry", AnyValue(bool_value=False)),
                kv("ratio", AnyValue(double_value=0.25)),
                kv("raw", AnyValue(bytes_value=b"\x00\x01\xff")),
                kv("tags", AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="a")]))),
                kv(
                    "user",
                    AnyValue(kvlist_value=KeyValueList(values=[kv("id", AnyValue(int_value=2**62))])),
                ),
            ],
            trace_id=TRACE_ID,
            span_id=SPAN_ID,
            flags=0x101,
        )
    )
    scope_logs.log_records.append(
        LogRecord(observed_time_unix_nano=1_700_000_002_000_000_000, severity_number=13, body=AnyValue())
    )
    second = request.resource_logs.add()
    other_scope = second.scope_logs.add()
    other_scope.log_records.append(
        LogRecord(
            event_name="cart.checkout",
            severity_number=5,
            body=AnyValue(kvlist_value=KeyValueList(values=[kv("items", AnyValue(int_value=3))])),
        )
    )
    other_scope.log_records.append(
        LogRecord(
            body=AnyValue(int_value=7),
            attributes=[kv("event.name", AnyValue(string_value="counter")), kv("empty", AnyValue())],
        )
    )
    return request


SAMPLE_RECORDS = [
    DecodedRecord(
        kind="log",
        body={
            "text": "payment failed for ana@example.com ✓",
            "level": "ERROR",
            "attributes": {
                "http.status_code": 502,
                "retry": False,
                "ratio": 0.25,
                "raw": "AAH/",
                "tags": ["a"],
                "user": {"id": 2**62},
                "trace_id": TRACE_ID.hex(),
                "span_id": SPAN_ID.hex(),
                "trace_flags": 1,
                "severity_number": 17,
                "resource": {"service.name": "checkout"},
                "scope": {"name": "checkout.http", "version": "2.1"},
            },
        },
        timestamp="2023-11-14T22:13:20.123456Z",
    ),
    DecodedRecord(
        kind="log",
        body={
            "text": "",
            "level": "WARN",
            "attributes": {
                "severity_number": 13,
                "resource": {"service.name": "checkout"},
                "scope": {"name": "checkout.http", "version": "2.1"},
            },
        },
        timestamp="2023-11-14T22:13:22.000000Z",
    ),
    DecodedRecord(
        kind="log",
        body={
            "text": '{"items":3}',
            "level": "DEBUG",
            "attributes": {"severity_number": 5, "body": {"items": 3}},
        },
        event_type="cart.checkout",
    ),
    DecodedRecord(
        kind="log",
        body={"text": "7", "attributes": {"event.name": "counter", "empty": None, "body": 7}},
        event_type="counter",
    ),
]


# --- the specification's own examples (opentelemetry-proto/examples) ---------------------------------


def test_published_logs_example_decodes_to_one_log_record() -> None:
    # GIVEN the logs.json example published with the OTLP specification
    body = (FIXTURES / "otlp-logs.json").read_bytes()

    # WHEN it is decoded as OTLP JSON
    decoded = otlp.decode(body, "application/json")

    # THEN it is one log with every field of the example mapped
    assert decoded == Decoded(
        records=[
            DecodedRecord(
                kind="log",
                body={
                    "text": "Example log record",
                    "level": "Information",
                    "attributes": {
                        "string.attribute": "some string",
                        "boolean.attribute": True,
                        "int.attribute": 10,
                        "double.attribute": 637.704,
                        "array.attribute": ["many", "values"],
                        "map.attribute": {"some.map.key": "some value"},
                        "trace_id": "5b8efff798038103d269b633813fc60c",
                        "span_id": "eee19b7ec3c1b174",
                        "severity_number": 10,
                        "resource": {"service.name": "my.service"},
                        "scope": {
                            "name": "my.library",
                            "version": "1.0.0",
                            "attributes": {"my.scope.attribute": "some scope attribute"},
                        },
                    },
                },
                timestamp="2018-12-13T14:51:00.300000Z",
            )
        ]
    )


def test_published_events_example_has_its_event_name_and_structured_body() -> None:
    body = (FIXTURES / "otlp-events.json").read_bytes()

    (record,) = otlp.decode(body, "application/json").records

    assert record.event_type == "browser.page_view"
    assert record.timestamp == "2018-12-13T14:51:00.300000Z"
    assert record.body["level"] == "test severity text"
    payload = {
        "type": 0,
        "url": "https://www.guidgenerator.com/online-guid-generator.aspx",
        "referrer": "https://wwww.google.com",
        "title": "Free Online GUID Generator",
    }
    assert record.body["attributes"]["body"] == payload
    assert orjson.loads(record.body["text"]) == payload
    assert record.body["attributes"]["event.attribute"] == "some event attribute"


@pytest.mark.parametrize("name", ["otlp-logs.json", "otlp-events.json"])
def test_published_examples_decode_the_same_as_their_protobuf_form(name: str) -> None:
    body = (FIXTURES / name).read_bytes()
    document = orjson.loads(body)
    for resource_logs in document["resourceLogs"]:
        for scope_logs in resource_logs["scopeLogs"]:
            for record in scope_logs["logRecords"]:
                for key in ("traceId", "spanId"):
                    if key in record:
                        record[key] = base64.b64encode(bytes.fromhex(record[key])).decode()
    request = json_format.ParseDict(document, ExportLogsServiceRequest())

    assert otlp.decode(request.SerializeToString(), "application/x-protobuf") == otlp.decode(
        body, "application/json"
    )


# --- protobuf and JSON forms ------------------------------------------------------------------------


def test_protobuf_round_trip_maps_every_field() -> None:
    body = sample_request().SerializeToString()

    assert otlp.decode(body, "application/x-protobuf") == Decoded(records=SAMPLE_RECORDS)


def test_json_form_of_the_same_request_decodes_to_the_same_records() -> None:
    assert otlp.decode(otlp_json(sample_request()), "application/json; charset=utf-8") == Decoded(
        records=SAMPLE_RECORDS
    )


@pytest.mark.parametrize("content_type", ["application/x-protobuf", "application/json"])
def test_both_encodings_keep_time_and_observed_time_to_the_nanosecond(content_type: str) -> None:
    request = sample_request()
    body = request.SerializeToString() if content_type.endswith("protobuf") else otlp_json(request)
    nanos = [r.nanos for r in otlp.decode(body, content_type).records]
    assert nanos[:2] == [
        (1_700_000_000_123_456_789, 1_700_000_001_000_000_000),
        (0, 1_700_000_002_000_000_000),
    ]


def test_json_accepts_64_bit_integers_as_numbers_lowercase_hex_and_ignores_unknown_fields() -> None:
    document = {
        "resourceLogs": [
            {
                "futureField": {"x": 1},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": 1544712660300000000,
                                "severityNumber": 9,
                                "traceId": TRACE_ID.hex(),
                                "body": {"intValue": 5, "futureKind": True},
                                "someNewField": "ignored",
                            }
                        ]
                    }
                ],
            }
        ]
    }

    (record,) = otlp.decode(orjson.dumps(document), "application/json").records

    assert record.timestamp == "2018-12-13T14:51:00.300000Z"
    assert record.body == {
        "text": "5",
        "level": "INFO",
        "attributes": {"trace_id": TRACE_ID.hex(), "severity_number": 9, "body": 5},
    }


@pytest.mark.parametrize(
    ("number", "level"),
    [
        (0, None),
        (1, "TRACE"),
        (4, "TRACE"),
        (8, "DEBUG"),
        (9, "INFO"),
        (16, "WARN"),
        (20, "ERROR"),
        (24, "FATAL"),
    ],
)
def test_severity_number_without_text_maps_to_the_standard_names(number: int, level: str | None) -> None:
    request = ExportLogsServiceRequest()
    request.resource_logs.add().scope_logs.add().log_records.append(
        LogRecord(severity_number=number, body=AnyValue(string_value="x"))  # type: ignore[arg-type]
    )

    (record,) = otlp.decode(request.SerializeToString(), "application/x-protobuf").records

    assert record.body.get("level") == level


def test_an_empty_request_is_no_records() -> None:
    assert otlp.decode(b"", "application/x-protobuf") == Decoded()
    assert otlp.decode(b"{}", "application/json") == Decoded()


def test_a_record_with_a_malformed_trace_id_is_refused_alone() -> None:
    request = ExportLogsServiceRequest()
    records = request.resource_logs.add().scope_logs.add().log_records
    records.append(LogRecord(body=AnyValue(string_value="ok")))
    records.append(LogRecord(body=AnyValue(string_value="short id"), trace_id=b"\x01\x02"))
    records.append(LogRecord(body=AnyValue(string_value="long span"), span_id=b"\x01" * 9))
    records.append(LogRecord(body=AnyValue(string_value="ok too")))

    for decoded in (
        otlp.decode(request.SerializeToString(), "application/x-protobuf"),
        otlp.decode(otlp_json(request), "application/json"),
    ):
        assert [r.body["text"] for r in decoded.records] == ["ok", "ok too"]
        assert decoded.errors == [
            ItemError(1, "invalid-trace-id", "trace_id must be 16 bytes"),
            ItemError(2, "invalid-span-id", "span_id must be 8 bytes"),
        ]


# --- malformed requests -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"\xff\xff\xff", "application/x-protobuf", 400, "invalid-protobuf"),
        (b"\x0a\x05\x01", "application/x-protobuf", 400, "invalid-protobuf"),  # truncated field
        (b"{", "application/json", 400, "invalid-json"),
        (b"[]", "application/json", 400, "invalid-json"),
        (b'{"resourceLogs": 5}', "application/json", 400, "invalid-json"),
        (
            b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "zz"}]}]}]}',
            "application/json",
            400,
            "invalid-json",
        ),
        (
            b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": 12}]}]}]}',
            "application/json",
            400,
            "invalid-json",
        ),
        (
            b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "soon"}]}]}]}',
            "application/json",
            400,
            "invalid-json",
        ),
        (b"\xff{}", "application/json", 400, "invalid-json"),
        (b"{}", "text/plain", 415, "unsupported-media-type"),
        (b"{}", "", 415, "unsupported-media-type"),
        (b"{}", "application/protobuf", 415, "unsupported-media-type"),
    ],
)
def test_undecodable_requests_are_refused_whole(
    body: bytes, content_type: str, status: int, code: str
) -> None:
    with pytest.raises(ProtocolError) as caught:
        otlp.decode(body, content_type)

    assert (caught.value.status, caught.value.code) == (status, code)
    assert caught.value.message


def test_invalid_utf8_in_a_protobuf_string_is_400() -> None:
    request = ExportLogsServiceRequest()
    request.resource_logs.add().scope_logs.add().log_records.append(LogRecord(severity_text="\u00e9"))
    body = request.SerializeToString().replace("\u00e9".encode(), b"\xff\xfe")

    with pytest.raises(ProtocolError) as caught:
        otlp.decode(body, "application/x-protobuf")

    assert (caught.value.status, caught.value.code) == (400, "invalid-protobuf")


# --- encoders: what a client parses ---------------------------------------------------------------


def test_full_success_leaves_partial_success_unset_in_both_encodings() -> None:
    body, content_type = otlp.encode_success(0, "", json=False)
    assert content_type == "application/x-protobuf"
    assert not ExportLogsServiceResponse.FromString(body).HasField("partial_success")

    body, content_type = otlp.encode_success(0, "", json=True)
    assert content_type == "application/json"
    assert not json_format.Parse(body, ExportLogsServiceResponse()).HasField("partial_success")


@pytest.mark.parametrize("as_json", [False, True])
def test_partial_success_carries_the_rejected_count_and_message(as_json: bool) -> None:
    body, _ = otlp.encode_success(3, "3 records nested too deep", json=as_json)

    if as_json:
        assert orjson.loads(body) == {
            "partialSuccess": {"rejectedLogRecords": "3", "errorMessage": "3 records nested too deep"}
        }
        response = json_format.Parse(body, ExportLogsServiceResponse())
    else:
        response = ExportLogsServiceResponse.FromString(body)
    assert response.partial_success.rejected_log_records == 3
    assert response.partial_success.error_message == "3 records nested too deep"


@pytest.mark.parametrize(("status", "grpc_code"), [(400, 3), (413, 2), (429, 8), (503, 14), (500, 2)])
def test_status_body_is_a_google_rpc_status(status: int, grpc_code: int) -> None:
    body, content_type = otlp.encode_status(status, "bad data ✓", json=False)

    # google.rpc.Status: code = 1 (varint), message = 2 (length-delimited UTF-8)
    fields = {field.field_number: field.data for field in UnknownFieldSet(Empty.FromString(body))}
    assert content_type == "application/x-protobuf"
    assert fields == {1: grpc_code, 2: "bad data ✓".encode()}

    body, content_type = otlp.encode_status(status, "bad data ✓", json=True)
    assert content_type == "application/json"
    assert orjson.loads(body) == {"code": grpc_code, "message": "bad data ✓"}


@pytest.mark.parametrize(
    ("content_type", "is_json"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/x-protobuf", False),
        (None, False),
    ],
)
def test_response_encoding_follows_the_request(content_type: str | None, is_json: bool) -> None:
    assert otlp.response_is_json(content_type) is is_json


# --- properties and import cost -------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)
otlp_keys = st.sampled_from(
    [
        "resourceLogs",
        "scopeLogs",
        "logRecords",
        "traceId",
        "spanId",
        "body",
        "stringValue",
        "kvlistValue",
        "values",
        "key",
        "value",
        "attributes",
        "timeUnixNano",
        "severityNumber",
        "arrayValue",
        "intValue",
    ]
)
otlp_shaped = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=40)
    | st.sampled_from(["5B8E", "0" * 32, "AAH/"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(otlp_keys, children, max_size=4),
    max_leaves=40,
)


def decodes_or_refuses(body: bytes, content_type: str) -> None:
    try:
        result = otlp.decode(body, content_type)
    except ProtocolError as refused:
        status = refused.status
    else:
        status = 200
        orjson.dumps([record.body for record in result.records])
    assert status == 200 or 400 <= status < 500


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=300))
def test_any_bytes_decode_or_are_refused_with_a_4xx(body: bytes) -> None:
    decodes_or_refuses(body, "application/x-protobuf")
    decodes_or_refuses(body, "application/json")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values | otlp_shaped)
def test_any_json_value_decodes_or_is_refused_with_a_4xx(value: Any) -> None:
    decodes_or_refuses(json.dumps(value).encode(), "application/json")


def test_importing_the_adapter_does_not_import_protobuf() -> None:
    code = "import sys, ingest.protocols.otlp; sys.exit('google.protobuf' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False).returncode == 0


# --- OTLP JSON: the canonical path and protobuf's own JSON mapping decode alike ------------------------


@pytest.mark.parametrize("name", ["otlp-logs.json", "otlp-events.json"])
def test_published_examples_take_the_canonical_path(name: str) -> None:
    document = orjson.loads((FIXTURES / name).read_bytes())

    assert otlp._canonical_json_records(document) == otlp._records(otlp._parse_json(document))


def test_exporter_json_without_bytes_values_takes_the_canonical_path() -> None:
    request = sample_request()
    attributes = request.resource_logs[0].scope_logs[0].log_records[0].attributes
    del attributes[3]  # bytesValue: base64 in JSON, left to protobuf's mapping
    document = orjson.loads(otlp_json(request))

    assert otlp._canonical_json_records(document) == otlp.decode(request.SerializeToString(), otlp.PROTOBUF)


def by_protobuf_mapping(document: Any) -> Decoded | int:
    try:
        return otlp._records(otlp._parse_json(copy.deepcopy(document)))
    except ProtocolError as refused:
        return refused.status


hex_ids = (
    st.sampled_from(["", TRACE_ID.hex(), TRACE_ID.hex().upper(), SPAN_ID.hex(), "0102", "zz", "0"])
    | st.none()
)
uint64s = (
    st.integers(0, 2**64 - 1).map(str)
    | st.integers(-5, 2**64 + 5)
    | st.sampled_from(["soon", "", "-1", "1e3", "18446744073709551616", " 5", "5_000"])
    | st.none()
)
any_values = st.recursive(
    st.fixed_dictionaries({}, optional={"stringValue": st.text(max_size=5) | st.integers() | st.none()})
    | st.fixed_dictionaries({"boolValue": st.booleans() | st.just("true")})
    | st.fixed_dictionaries(
        {
            "intValue": st.integers(-(2**63), 2**63 - 1).map(str)
            | st.integers(-(2**64), 2**64)
            | st.sampled_from(["-0", "x", "1.0"])
        }
    )
    | st.fixed_dictionaries(
        {
            "doubleValue": st.floats(allow_nan=False, allow_infinity=False)
            | st.integers(-(2**53), 2**53)
            | st.sampled_from(["NaN", "Infinity", "1.5"])
        }
    )
    | st.fixed_dictionaries({"bytesValue": st.sampled_from(["AAH/", "AAH_", "", "!"])})
    | st.fixed_dictionaries({"stringValue": st.just("a"), "intValue": st.just("1")})
    | st.fixed_dictionaries({"stringValueStrindex": st.integers(0, 3)}),
    lambda children: (
        st.fixed_dictionaries(
            {"arrayValue": st.fixed_dictionaries({}, optional={"values": st.lists(children, max_size=3)})}
        )
        | st.fixed_dictionaries(
            {
                "kvlistValue": st.fixed_dictionaries(
                    {},
                    optional={
                        "values": st.lists(
                            st.fixed_dictionaries(
                                {},
                                optional={
                                    "key": st.sampled_from(["a", "b", "event.name", "trace_id"]),
                                    "value": children,
                                },
                            ),
                            max_size=3,
                        )
                    },
                )
            }
        )
    ),
    max_leaves=8,
)
key_values = st.lists(
    st.fixed_dictionaries(
        {"key": st.sampled_from(["a", "b", "event.name", "resource", "body"]), "value": any_values}
    ),
    max_size=3,
)
log_records = st.fixed_dictionaries(
    {},
    optional={
        "timeUnixNano": uint64s,
        "observedTimeUnixNano": uint64s,
        "severityNumber": st.integers(-(2**31) - 1, 2**31)
        | st.sampled_from(["SEVERITY_NUMBER_WARN", "9", "NOPE", 9.0]),
        "severityText": st.sampled_from(["", "INFO", "Information"]) | st.integers(0, 1),
        "body": any_values | st.none(),
        "attributes": key_values | st.none(),
        "droppedAttributesCount": st.integers(-1, 2**32),
        "flags": st.integers(-1, 2**32) | st.just("1"),
        "traceId": hex_ids,
        "spanId": hex_ids,
        "eventName": st.sampled_from(["", "page_view"]) | st.integers(0, 1),
        "futureField": st.integers(),
        "severity_text": st.just("snake"),
    },
)
otlp_documents = st.fixed_dictionaries(
    {
        "resourceLogs": st.lists(
            st.fixed_dictionaries(
                {
                    "scopeLogs": st.lists(
                        st.fixed_dictionaries(
                            {"logRecords": st.lists(log_records, max_size=3)},
                            optional={
                                "scope": st.fixed_dictionaries(
                                    {},
                                    optional={
                                        "name": st.sampled_from(["", "lib"]),
                                        "version": st.just("1"),
                                        "attributes": key_values,
                                    },
                                ),
                                "schemaUrl": st.just("https://opentelemetry.io/schemas/1.21.0") | st.none(),
                            },
                        ),
                        max_size=2,
                    )
                },
                optional={
                    "resource": st.fixed_dictionaries(
                        {}, optional={"attributes": key_values, "droppedAttributesCount": st.integers(0, 2)}
                    )
                },
            ),
            max_size=2,
        )
    }
)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(document=otlp_documents)
def test_the_canonical_json_path_decodes_as_protobufs_json_mapping(document: dict[str, Any]) -> None:
    expected = by_protobuf_mapping(document)
    untouched = copy.deepcopy(document)

    try:
        decoded = otlp._canonical_json_records(document)
    except otlp._NotCanonical:
        decoded = None  # decode() falls back to the protobuf mapping: equal by construction

    assert document == untouched
    if decoded is not None:
        assert same(decoded, expected)
    if isinstance(expected, Decoded):
        assert same(otlp.decode(json.dumps(document).encode(), "application/json"), expected)


def same(got: object, expected: object) -> bool:
    """Equal, counting a NaN (OTLP JSON's "NaN" double) as equal to itself: NaN != NaN in Python."""
    return got == expected or repr(got) == repr(expected)
