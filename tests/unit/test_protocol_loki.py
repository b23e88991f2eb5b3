"""Loki push adapter: Loki's own request fixtures, snappy protobuf round trips, labels, malformed input."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import cramjam
import orjson
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.problems import ItemError
from ingest.protocols import loki
from ingest.protocols.records import Decoded, DecodedRecord, ProtocolError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "protocols"
FIZZBUZZ_TIME = "2019-10-11T18:23:58.000000Z"  # 1570818238000000000 ns


def push_request_class() -> Any:
    """The client's view of logproto.PushRequest, written out from Loki's pkg/push/push.proto here
    (string fields as strings, every field declared), independently of the adapter's own definition."""
    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="test/loki/push.proto", package="logproto", dependency=["google/protobuf/timestamp.proto"]
    )
    file.syntax = "proto3"
    fields = {
        "PushRequest": [
            ("streams", 1, F.TYPE_MESSAGE, ".logproto.StreamAdapter", True),
            ("format", 2, F.TYPE_STRING, "", False),
        ],
        "StreamAdapter": [
            ("labels", 1, F.TYPE_STRING, "", False),
            ("entries", 2, F.TYPE_MESSAGE, ".logproto.EntryAdapter", True),
            ("hash", 3, F.TYPE_UINT64, "", False),
        ],
        "LabelPairAdapter": [("name", 1, F.TYPE_STRING, "", False), ("value", 2, F.TYPE_STRING, "", False)],
        "EntryAdapter": [
            ("timestamp", 1, F.TYPE_MESSAGE, ".google.protobuf.Timestamp", False),
            ("line", 2, F.TYPE_STRING, "", False),
            ("structuredMetadata", 3, F.TYPE_MESSAGE, ".logproto.LabelPairAdapter", True),
            ("parsed", 4, F.TYPE_MESSAGE, ".logproto.LabelPairAdapter", True),
        ],
    }
    for name, declared in fields.items():
        message = file.message_type.add(name=name)
        for field_name, number, kind, type_name, repeated in declared:
            field = message.field.add(
                name=field_name,
                number=number,
                type=kind,
                label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL,
            )
            if type_name:
                field.type_name = type_name
    pool = descriptor_pool.DescriptorPool()
    timestamp_file = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(timestamp_file)
    pool.Add(timestamp_file)
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("logproto.PushRequest"))


PushRequest = push_request_class()


def push(streams: list[tuple[str, list[tuple[int, str, dict[str, str]]]]]) -> bytes:
    """A snappy-compressed protobuf push, as Promtail and Alloy send it."""
    request = PushRequest()
    for labels, entries in streams:
        stream = request.streams.add(labels=labels)
        for nanos, line, metadata in entries:
            entry = stream.entries.add(line=line)
            entry.timestamp.seconds, entry.timestamp.nanos = divmod(nanos, 1_000_000_000)
            for name, value in metadata.items():
                entry.structuredMetadata.add(name=name, value=value)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def log(
    text: str, attributes: dict[str, str], timestamp: str | None, level: str | None = None
) -> DecodedRecord:
    body: dict[str, Any] = {"text": text}
    if level:
        body["level"] = level
    if attributes:
        body["attributes"] = attributes
    return DecodedRecord(kind="log", body=body, timestamp=timestamp)


# --- Loki's own request fixtures (pkg/loghttp/push/push_test.go) ----------------------------------


@pytest.mark.parametrize(
    ("name", "records"),
    [
        ("loki-push.json", [log("fizzbuzz", {"foo": "bar2"}, FIZZBUZZ_TIME)]),
        (
            "loki-push-structured-metadata.json",
            [log("fizzbuzz", {"foo": "bar2", "a": "a", "b": "b"}, FIZZBUZZ_TIME)],
        ),
        (
            "loki-push-multiline-metadata.json",
            [log("fizzbuzz", {"foo": "bar2", "key": "multi\nline\nvalue"}, FIZZBUZZ_TIME)],
        ),
        (
            "loki-push-three-streams.json",
            [
                log("fizzbuzz", {"foo": "bar2", "environment": "dev"}, FIZZBUZZ_TIME),
                log("xx", {"foo": "bar2", "environment": "prod"}, FIZZBUZZ_TIME),
                log("graf", {"foo": "bar2", "dass": "zasss"}, FIZZBUZZ_TIME),
            ],
        ),
    ],
)
def test_lokis_json_push_fixtures(name: str, records: list[DecodedRecord]) -> None:
    body = (FIXTURES / name).read_bytes()

    assert loki.decode(body, "application/json; charset=utf-8") == Decoded(records=records)


def test_lokis_protobuf_fixture_with_spaced_quoted_label_names() -> None:
    # GIVEN the protobuf push of Loki's TestParseRequest ("extra spaces are important")
    body = push(
        [
            (
                '{ "foo"="bar2",      "environment"="prod"   }',
                [(1570818238000000000, "fizzbuzz", {"name1": "value1"})],
            )
        ]
    )

    # WHEN it is decoded
    decoded = loki.decode(body, "application/x-protobuf")

    # THEN the labels are parsed and the metadata joins them
    assert decoded == Decoded(
        records=[log("fizzbuzz", {"foo": "bar2", "environment": "prod", "name1": "value1"}, FIZZBUZZ_TIME)]
    )


# --- protobuf round trips and JSON == protobuf --------------------------------------------------

STREAMS = [
    (
        '{app="api", env="a\\"b", path="C:\\\\logs", note="x, y = z", multi="l1\\nl2"}',
        [
            (1_700_000_000_123_456_789, "GET /health 200 ✓ ana@example.com", {}),
            (1_700_000_001_000_000_000, "slow query", {"trace_id": "0242ac120002", "level": "warn"}),
        ],
    ),
    ('{job="worker", level="error"}', [(1_700_000_002_000_000_000, "x" * 5000, {"user_id": "superUser123"})]),
]
STREAM_RECORDS = [
    log(
        "GET /health 200 ✓ ana@example.com",
        {"app": "api", "env": 'a"b', "path": "C:\\logs", "note": "x, y = z", "multi": "l1\nl2"},
        "2023-11-14T22:13:20.123456Z",
    ),
    log(
        "slow query",
        {
            "app": "api",
            "env": 'a"b',
            "path": "C:\\logs",
            "note": "x, y = z",
            "multi": "l1\nl2",
            "trace_id": "0242ac120002",
            "level": "warn",
        },
        "2023-11-14T22:13:21.000000Z",
        level="warn",
    ),
    log(
        "x" * 5000,
        {"job": "worker", "level": "error", "user_id": "superUser123"},
        "2023-11-14T22:13:22.000000Z",
        level="error",
    ),
]


def json_push(streams: list[tuple[dict[str, str], list[list[Any]]]]) -> bytes:
    return orjson.dumps({"streams": [{"stream": labels, "values": values} for labels, values in streams]})


def test_snappy_protobuf_round_trip() -> None:
    for content_type in ("application/x-protobuf", "", None):
        assert loki.decode(push(STREAMS), content_type) == Decoded(records=STREAM_RECORDS)
    assert loki.decode(push(STREAMS), "application/x-protobuf", "snappy") == Decoded(records=STREAM_RECORDS)


def test_json_form_of_the_same_push_decodes_to_the_same_records() -> None:
    body = json_push(
        [
            (
                {"app": "api", "env": 'a"b', "path": "C:\\logs", "note": "x, y = z", "multi": "l1\nl2"},
                [
                    ["1700000000123456789", "GET /health 200 ✓ ana@example.com"],
                    ["1700000001000000000", "slow query", {"trace_id": "0242ac120002", "level": "warn"}],
                ],
            ),
            (
                {"job": "worker", "level": "error"},
                [["1700000002000000000", "x" * 5000, {"user_id": "superUser123"}]],
            ),
        ]
    )

    assert loki.decode(body, "application/json") == loki.decode(push(STREAMS), "application/x-protobuf")
    # AND both keep each timestamp to the nanosecond, for the service's content identity
    nanos = [(1700000000123456789,), (1700000001000000000,), (1700000002000000000,)]
    assert [r.nanos for r in loki.decode(body, "application/json").records] == nanos
    assert [r.nanos for r in loki.decode(push(STREAMS), "application/x-protobuf").records] == nanos


@pytest.mark.parametrize("key", ["level", "severity", "detected_level"])
def test_level_comes_from_a_level_label_or_metadata(key: str) -> None:
    body = json_push([({"app": "a"}, [["1", "boom", {key: "ERROR"}], ["2", "fine"]])])

    first, second = loki.decode(body, "application/json").records

    assert first.body["level"] == "ERROR"
    assert "level" not in second.body  # the service detects it from the text


def test_labels_with_empty_values_are_dropped_in_both_forms() -> None:
    from_json = loki.decode(json_push([({"app": "a", "env": ""}, [["1", "x"]])]), "application/json")
    from_protobuf = loki.decode(push([('{app="a", env=""}', [(1, "x", {})])]), "application/x-protobuf")

    assert (
        from_json == from_protobuf == Decoded(records=[log("x", {"app": "a"}, "1970-01-01T00:00:00.000000Z")])
    )


def test_zero_and_out_of_range_timestamps_leave_the_time_to_the_service() -> None:
    body = json_push([({"a": "b"}, [["0", "zero"], ["-5", "negative"]])])

    assert [r.timestamp for r in loki.decode(body, "application/json").records] == [None, None]
    assert loki.decode(push([("{}", [(0, "unset", {})])]), None).records == [log("unset", {}, None)]


def test_malformed_json_entries_are_refused_alone_by_batch_index() -> None:
    body = json_push(
        [
            (
                {"a": "b"},
                [
                    ["1", "ok"],
                    [1, "numeric timestamp"],
                    ["1.5", "fractional"],
                    ["9223372036854775808", "over int64"],
                    ["--5", "two signs"],
                ],
            ),
            (
                {"c": "d"},
                [
                    ["1", {"fizz": "buzz"}],
                    "not an entry",
                    ["1"],
                    ["1", "bad metadata", {"k": {"deep": 1}}],
                    ["2", "ok too", {"n": 3}],
                ],
            ),
        ]
    )

    decoded = loki.decode(body, "application/json")

    assert decoded.records == [
        log("ok", {"a": "b"}, "1970-01-01T00:00:00.000000Z"),
        log("ok too", {"c": "d", "n": "3"}, "1970-01-01T00:00:00.000000Z"),
    ]
    assert [(e.index, e.code) for e in decoded.errors] == [
        (1, "invalid-timestamp"),
        (2, "invalid-timestamp"),
        (3, "invalid-timestamp"),
        (4, "invalid-timestamp"),
        (5, "invalid-entry"),
        (6, "invalid-entry"),
        (7, "invalid-entry"),
        (8, "invalid-metadata"),
    ]


def test_a_protobuf_line_that_is_not_utf8_is_refused_alone() -> None:
    request = PushRequest()
    stream = request.streams.add(labels='{a="b"}')
    stream.entries.add(line="good")
    stream.entries.add(line="\u00e9")
    raw = request.SerializeToString().replace("\u00e9".encode(), b"\xff\xfe")

    decoded = loki.decode(bytes(cramjam.snappy.compress_raw(raw)), "application/x-protobuf")

    assert [r.body["text"] for r in decoded.records] == ["good"]
    assert decoded.errors == [ItemError(1, "invalid-utf8", "the line or its metadata is not UTF-8")]


# --- label strings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("{}", {}),
        ('{app="x"}', {"app": "x"}),
        ('{app="x",}', {"app": "x"}),
        ('  {  app = "x" ,env="prod"  }  ', {"app": "x", "env": "prod"}),
        ('{env="a\\"b"}', {"env": 'a"b'}),
        ('{path="C:\\\\x", nl="a\\nb", tab="a\\tb"}', {"path": "C:\\x", "nl": "a\nb", "tab": "a\tb"}),
        ('{v="a,b}c=d"}', {"v": "a,b}c=d"}),
        ('{v="\\u00e9\\xc3\\xa9\\101\\U0001F600"}', {"v": "ééA😀"}),
        ("{v='single \\' quoted'}", {"v": "single ' quoted"}),
        ("{v=`raw \\n kept`}", {"v": "raw \\n kept"}),
        ('{"service.name"="api"}', {"service.name": "api"}),
        ('up{job="x"}', {"__name__": "up", "job": "x"}),
        ('{a="", b="kept"}', {"b": "kept"}),
        ('{v="ünïcødé"}', {"v": "ünïcødé"}),
    ],
)
def test_label_strings_parse_as_loki_parses_them(text: str, labels: dict[str, str]) -> None:
    assert loki.parse_labels(text) == labels


@pytest.mark.parametrize(
    "text",
    [
        "",
        "app=x",
        '{app="x"',
        '{app="x" env="y"}',
        "{app=x}",
        "{app='x\"}",
        '{1app="x"}',
        '{app="x"} trailing',
        '{app="x", app="y"}',
        '{app="\\q"}',
        '{app="\\xff"}',
        '{app="\\uD800"}',
        '{app="\\400"}',
        '{app="line\nbreak"}',
        '{app="x",,}',
    ],
)
def test_invalid_label_strings_are_refused(text: str) -> None:
    with pytest.raises(loki.InvalidLabels):
        loki.parse_labels(text)


def test_an_invalid_label_string_refuses_the_whole_push_with_400() -> None:
    with pytest.raises(ProtocolError) as caught:
        loki.decode(push([('{app="x"', [(1, "line", {})])]), "application/x-protobuf")

    assert (caught.value.status, caught.value.code) == (400, "invalid-labels")


# --- malformed requests -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "content_encoding", "status", "code"),
    [
        (b"", "application/json", None, 400, "invalid-json"),  # Loki's first TestParseRequest case
        (
            (FIXTURES / "loki-push.json").read_bytes(),
            "",
            None,
            400,
            "invalid-snappy",
        ),  # JSON without its type
        (
            (FIXTURES / "loki-push.json").read_bytes(),
            "application/jsonn",
            None,
            415,
            "unsupported-media-type",
        ),
        (b"not json", "application/json", None, 400, "invalid-json"),
        (b"[]", "application/json", None, 400, "invalid-json"),
        (b'{"streams": {}}', "application/json", None, 400, "invalid-json"),
        (b'{"streams": [1]}', "application/json", None, 400, "invalid-json"),
        (
            b'{"streams": [{"stream": {"a": null}, "values": []}]}',
            "application/json",
            None,
            400,
            "invalid-json",
        ),
        (b'{"streams": [{"stream": [], "values": []}]}', "application/json", None, 400, "invalid-json"),
        (b'{"streams": [{"stream": {}, "values": {}}]}', "application/json", None, 400, "invalid-json"),
        (b"\x00\x01\x02garbage", "application/x-protobuf", None, 400, "invalid-snappy"),
        (
            bytes(cramjam.snappy.compress_raw(b"\xff\xff\xff")),
            "application/x-protobuf",
            None,
            400,
            "invalid-protobuf",
        ),
        (b"{}", "application/json", "br", 415, "unsupported-encoding"),
    ],
)
def test_undecodable_pushes_are_refused_whole(
    body: bytes, content_type: str, content_encoding: str | None, status: int, code: str
) -> None:
    with pytest.raises(ProtocolError) as caught:
        loki.decode(body, content_type, content_encoding)

    assert (caught.value.status, caught.value.code) == (status, code)


def test_a_snappy_bomb_is_413_before_it_is_inflated() -> None:
    body = bytes(cramjam.snappy.compress_raw(b"\x00" * 2_000_000))
    assert len(body) < 200_000

    with pytest.raises(ProtocolError) as caught:
        loki.decode(body, "application/x-protobuf", max_decompressed_bytes=1_000_000)

    assert (caught.value.status, caught.value.code) == (413, "decompressed-too-large")


def test_snappy_is_the_block_format_not_the_framed_stream() -> None:
    raw = PushRequest(streams=[{"labels": '{a="b"}', "entries": [{"line": "x"}]}]).SerializeToString()

    with pytest.raises(ProtocolError):
        loki.decode(bytes(cramjam.snappy.compress(raw)), "application/x-protobuf")
    assert loki.decode(bytes(cramjam.snappy.compress_raw(raw)), "application/x-protobuf").records


def test_an_empty_push_is_no_records() -> None:
    assert loki.decode(b"", "application/x-protobuf") == Decoded()
    assert loki.decode(b'{"streams": []}', "application/json") == Decoded()


# --- encoders -----------------------------------------------------------------------------------


def test_success_is_204_with_no_body() -> None:
    assert loki.encode_success() == (204, b"", None)


def test_errors_are_plain_text_lines() -> None:
    assert loki.encode_error("error parsing labels: unexpected end ✓") == (
        "error parsing labels: unexpected end ✓\n".encode(),
        "text/plain; charset=utf-8",
    )


# --- properties and import cost -----------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)
loki_shaped = st.fixed_dictionaries(
    {
        "streams": st.lists(
            st.fixed_dictionaries(
                {
                    "stream": st.dictionaries(st.text(max_size=8), json_values, max_size=3),
                    "values": st.lists(json_values | st.lists(json_values, max_size=4), max_size=4),
                }
            ),
            max_size=3,
        )
    }
)


def decodes_or_refuses(body: bytes, content_type: str | None) -> None:
    try:
        result = loki.decode(body, content_type)
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
    decodes_or_refuses(bytes(cramjam.snappy.compress_raw(body)), "application/x-protobuf")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values | loki_shaped)
def test_any_json_value_decodes_or_is_refused_with_a_4xx(value: Any) -> None:
    decodes_or_refuses(json.dumps(value).encode(), "application/json")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(alphabet="{}=,\"'`\\ nxa_.\u00e9", max_size=30))
def test_any_label_string_parses_or_is_invalid(text: str) -> None:
    with contextlib.suppress(loki.InvalidLabels):
        loki.parse_labels(text)


def test_importing_the_adapter_does_not_import_protobuf_or_snappy() -> None:
    code = (
        "import sys, ingest.protocols.loki; "
        "sys.exit('google.protobuf' in sys.modules or 'cramjam' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False).returncode == 0
