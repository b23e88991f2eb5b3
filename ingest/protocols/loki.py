"""Loki push API (``POST /loki/api/v1/push``) as Promtail, Alloy, Fluent Bit and Vector send it.

Two encodings (grafana/loki ``pkg/loghttp/push/push.go``):
- ``application/x-protobuf`` (or no Content-Type): a ``logproto.PushRequest``, always compressed with
  snappy's *block* format (Loki decodes it with ``snappy.Decode``, not the framed stream format);
  ``Content-Encoding: snappy`` may be sent and means nothing more.
- ``application/json``: ``{"streams": [{"stream": {labels}, "values": [["<ns>", "<line>", {metadata}?]]}]}``.
Either may also be gzip-compressed; the service undoes ``Content-Encoding: gzip`` before ``decode``.

Each entry becomes one ``kind="log"`` record: the line as ``text``; the stream labels and then the
entry's structured metadata (which wins on a shared name) as ``attributes``; the nanosecond timestamp
as ``timestamp`` (0 or out of range: None, the service stamps the time received); ``level`` from a
``level``, ``severity`` or ``detected_level`` key of the metadata (first) or the labels, else None
(the service detects it in the text); ``nanos``: the timestamp as sent, for the service's content
identity of the entry. Labels with an empty value are dropped, as Loki drops them.
The protobuf form's label string is parsed as Loki does (Prometheus metric syntax:
``{app="api", env="a\\"b"}``, Go string escapes, trailing comma allowed); an invalid label string,
a malformed stream or malformed JSON refuses the whole request (400, as Loki answers). A malformed
entry (timestamp not an integer, line not text or not UTF-8, metadata not an object of strings) is
refused alone: ``ItemError.index`` counts entries across the
streams in order, and the records returned take the remaining indexes in order.

The answers Loki gives: 204 with no body on success, a plain-text message on errors.
protobuf and cramjam are imported on first use, never when this module is imported.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from ingest.problems import ItemError
from ingest.protocols.records import Decoded, DecodedRecord, ProtocolError
from ingest.protocols.timestamps import from_unix_nanos

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
SUCCESS_STATUS = 204
# What a decode may inflate a snappy body to when the caller names no cap (the OTLP spec's recommended limit).
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
# Content-Encodings the service may have already undone (gzip) or that mean nothing more (snappy).
_ENCODINGS = frozenset({"", "identity", "snappy", "gzip"})
_LEVEL_KEYS = ("level", "severity", "detected_level")
_NANOS = re.compile(r"[+-]?[0-9]{1,19}\Z")
_ERROR_CONTENT_TYPE = "text/plain; charset=utf-8"


def decode(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None = None,
    *,
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES,
) -> Decoded:
    """The log entries of one push request; ``ProtocolError`` when it cannot be decoded.

    ``body`` is what is left after the service undid ``Content-Encoding: gzip``; snappy (protobuf form
    only) is undone here, refusing with 413 a body that says it inflates beyond
    ``max_decompressed_bytes`` before inflating any of it.
    """
    encoding = (content_encoding or "").strip().lower()
    if encoding not in _ENCODINGS:
        raise ProtocolError(415, "unsupported-encoding", f"Content-Encoding {encoding!r} is not supported")
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in ("", PROTOBUF):
        return _decode_protobuf(_unsnappy(body, max_decompressed_bytes))
    if kind == JSON:
        return _decode_json(body)
    raise ProtocolError(
        415,
        "unsupported-media-type",
        f"Content-Type {kind!r} is not a Loki push encoding; use {PROTOBUF} or {JSON}",
    )


def encode_success() -> tuple[int, bytes, str | None]:
    """Loki's answer to an accepted push: status 204, no body, no Content-Type."""
    return SUCCESS_STATUS, b"", None


def encode_error(message: str) -> tuple[bytes, str]:
    """Body and Content-Type of an error answer (any status): the message as plain text, as Loki sends it."""
    return (message.rstrip("\n") + "\n").encode("utf-8", "replace"), _ERROR_CONTENT_TYPE


# --- labels -------------------------------------------------------------------------------------

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_QUOTED = r'"(?:[^"\\\n]|\\.)*"' + r"|'(?:[^'\\\n]|\\.)*'" + r"|`[^`]*`"
_METRIC_NAME = re.compile(r"\s*([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{\s*")
_PAIR = re.compile(rf"({_NAME}|{_QUOTED})\s*=\s*({_QUOTED})\s*(,?)\s*")
_CLOSE = re.compile(r"\}\s*\Z")
_ESCAPE = re.compile(
    r"\\(?:([abfnrtv\\'\"])|x([0-9A-Fa-f]{2})|([0-7]{3})|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8}))"
)
_SIMPLE_ESCAPES = {
    "a": b"\a",
    "b": b"\b",
    "f": b"\f",
    "n": b"\n",
    "r": b"\r",
    "t": b"\t",
    "v": b"\v",
    "\\": b"\\",
    "'": b"'",
    '"': b'"',
}


class InvalidLabels(ValueError):
    """A label string that is not Prometheus metric syntax."""


def parse_labels(text: str) -> dict[str, str]:
    """The labels of a Prometheus-style label string such as ``{app="api", env="a\\"b"}``.

    What Loki's ``syntax.ParseLabels`` accepts: an optional metric name before the braces (as
    ``__name__``), names that are identifiers or quoted strings, values in double quotes, single quotes
    (Go string escapes: ``\\\\ \\" \\n \\t \\xHH \\u0000``...) or backticks (raw), a trailing comma;
    labels with an empty value are dropped. Raises ``InvalidLabels`` for anything else, including a
    repeated name.
    """
    head = _METRIC_NAME.match(text)
    if head is None:
        raise InvalidLabels("a label set starts with '{'")
    labels: dict[str, str] = {}
    if head.group(1):
        labels["__name__"] = head.group(1)
    position = head.end()
    while not text.startswith("}", position):
        pair = _PAIR.match(text, position)
        if pair is None:
            raise InvalidLabels(f'expected name="value" at offset {position}')
        raw_name, raw_value, comma = pair.groups()
        name = _unquote(raw_name) if raw_name[0] in "\"'`" else raw_name
        if name in labels:
            raise InvalidLabels(f"label {name!r} appears twice")
        labels[name] = _unquote(raw_value)
        position = pair.end()
        if not comma and not text.startswith("}", position):
            raise InvalidLabels(f"expected ',' or '}}' at offset {position}")
    if not _CLOSE.match(text, position):
        raise InvalidLabels(f"unexpected text after '}}' at offset {position + 1}")
    return {name: value for name, value in labels.items() if value}


def _unquote(quoted: str) -> str:
    inner = quoted[1:-1]
    if quoted[0] == "`" or "\\" not in inner:
        return inner
    out = bytearray()
    position = 0
    for escape in _ESCAPE.finditer(inner):
        if escape.start() != position and "\\" in inner[position : escape.start()]:
            break
        out += inner[position : escape.start()].encode()
        simple, hex_byte, octal, short, long = escape.groups()
        if simple:
            out += _SIMPLE_ESCAPES[simple]
        elif hex_byte:
            out.append(int(hex_byte, 16))
        elif octal:
            if int(octal, 8) > 0xFF:
                raise InvalidLabels(f"octal escape \\{octal} is out of range")
            out.append(int(octal, 8))
        else:
            code = int(short or long, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise InvalidLabels(f"\\u escape {code:#x} is not a Unicode scalar value")
            out += chr(code).encode()
        position = escape.end()
    if "\\" in inner[position:]:
        raise InvalidLabels(f"unknown escape sequence in {quoted[:40]!r}")
    out += inner[position:].encode()
    try:
        return out.decode()
    except UnicodeDecodeError:
        raise InvalidLabels(f"escapes in {quoted[:40]!r} do not form UTF-8") from None


# --- protobuf -----------------------------------------------------------------------------------


def _unsnappy(body: bytes, max_decompressed_bytes: int) -> bytes | memoryview:
    import cramjam

    if not body:
        return b""
    try:
        size = cramjam.snappy.decompress_raw_len(body)
    except cramjam.DecompressionError:
        raise ProtocolError(400, "invalid-snappy", "the body is not snappy block-compressed") from None
    if size > max_decompressed_bytes:
        raise ProtocolError(
            413, "decompressed-too-large", f"the body inflates beyond {max_decompressed_bytes} bytes"
        )
    try:
        return memoryview(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError:
        raise ProtocolError(400, "invalid-snappy", "the body is not snappy block-compressed") from None


def _push_request_class() -> Any:
    """``logproto.PushRequest`` from Loki's ``pkg/push/push.proto``, only the fields a push carries.

    Field numbers and wire types are those of push.proto (checked against grafana/loki at
    65e30f8488e8a5ea2013c6881675f8103a8f6bc7). The text fields are declared ``bytes`` (the same wire
    type as ``string``) so that one line that is not UTF-8 refuses that entry, not the whole request
    (Loki's gogo-generated code does not check UTF-8 either). ``hash`` (StreamAdapter 3) and ``parsed``
    (EntryAdapter 4, query responses only) are left undeclared: protobuf skips unknown fields.
    """
    global _PUSH_REQUEST
    if _PUSH_REQUEST is None:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

        F = descriptor_pb2.FieldDescriptorProto
        file = descriptor_pb2.FileDescriptorProto(
            name="sluice/loki/push.proto", package="logproto", dependency=["google/protobuf/timestamp.proto"]
        )
        file.syntax = "proto3"

        def message(name: str, *fields: tuple[str, int, int, str | None, bool]) -> None:
            added = file.message_type.add(name=name)
            for field_name, number, kind, type_name, repeated in fields:
                field = added.field.add(
                    name=field_name,
                    number=number,
                    type=kind,
                    label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL,
                )
                if type_name:
                    field.type_name = type_name

        message(
            "PushRequest",
            ("streams", 1, F.TYPE_MESSAGE, ".logproto.StreamAdapter", True),
            ("format", 2, F.TYPE_STRING, None, False),
        )
        message(
            "StreamAdapter",
            ("labels", 1, F.TYPE_BYTES, None, False),
            ("entries", 2, F.TYPE_MESSAGE, ".logproto.EntryAdapter", True),
        )
        message(
            "LabelPairAdapter",
            ("name", 1, F.TYPE_BYTES, None, False),
            ("value", 2, F.TYPE_BYTES, None, False),
        )
        message(
            "EntryAdapter",
            ("timestamp", 1, F.TYPE_MESSAGE, ".google.protobuf.Timestamp", False),
            ("line", 2, F.TYPE_BYTES, None, False),
            ("structuredMetadata", 3, F.TYPE_MESSAGE, ".logproto.LabelPairAdapter", True),
        )
        pool = descriptor_pool.DescriptorPool()
        timestamp_file = descriptor_pb2.FileDescriptorProto()
        timestamp_pb2.DESCRIPTOR.CopyToProto(timestamp_file)
        pool.Add(timestamp_file)
        pool.Add(file)
        _PUSH_REQUEST = message_factory.GetMessageClass(pool.FindMessageTypeByName("logproto.PushRequest"))
    return _PUSH_REQUEST


_PUSH_REQUEST: Any = None


def _decode_protobuf(data: bytes | memoryview) -> Decoded:
    from google.protobuf.message import DecodeError

    request = _push_request_class()()
    try:
        request.ParseFromString(data)
    except DecodeError as exc:
        raise ProtocolError(400, "invalid-protobuf", f"not a Loki PushRequest: {exc}"[:300]) from None
    records: list[DecodedRecord] = []
    errors: list[ItemError] = []
    index = 0
    for stream in request.streams:
        labels = _stream_labels(stream.labels)
        stream_level = _level(labels)
        for entry in stream.entries:
            # Each field of a upb message costs a lookup from Python: every one is read once.
            try:
                line = entry.line.decode()
                pairs = entry.structuredMetadata
                metadata = {pair.name.decode(): pair.value.decode() for pair in pairs} if pairs else None
            except UnicodeDecodeError:
                errors.append(ItemError(index, "invalid-utf8", "the line or its metadata is not UTF-8"))
            else:
                stamp = entry.timestamp
                nanos = stamp.seconds * 1_000_000_000 + stamp.nanos
                records.append(_record(line, labels, metadata, nanos, stream_level))
            index += 1
    return Decoded(records, errors)


def _stream_labels(raw: bytes) -> dict[str, str]:
    try:
        return parse_labels(raw.decode())
    except UnicodeDecodeError:
        raise ProtocolError(400, "invalid-labels", "stream labels are not UTF-8") from None
    except InvalidLabels as exc:
        raise ProtocolError(400, "invalid-labels", f"stream labels {raw[:80]!r}: {exc}") from None


# --- JSON ---------------------------------------------------------------------------------------


def _decode_json(body: bytes) -> Decoded:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(400, "invalid-json", f"malformed JSON: {exc}"[:300]) from None
    streams = document.get("streams") if isinstance(document, dict) else None
    if not isinstance(streams, list):
        raise ProtocolError(400, "invalid-json", 'a Loki JSON push is an object with a "streams" array')
    records: list[DecodedRecord] = []
    errors: list[ItemError] = []
    index = 0
    for number, stream in enumerate(streams):
        if not isinstance(stream, dict):
            raise ProtocolError(400, "invalid-json", f"streams[{number}] is not an object")
        # Empty values dropped, as Loki's ParseLabels drops them from the label string it builds.
        labels = {
            name: value
            for name, value in _json_labels(stream.get("stream", {}), f"streams[{number}].stream").items()
            if value
        }
        values = stream.get("values", [])
        if not isinstance(values, list):
            raise ProtocolError(400, "invalid-json", f"streams[{number}].values is not an array")
        for entry in values:
            try:
                records.append(_json_entry(entry, labels))
            except _Rejected as rejected:
                errors.append(ItemError(index, rejected.code, rejected.message))
            index += 1
    return Decoded(records, errors)


class _Rejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _json_labels(value: Any, where: str) -> dict[str, str]:
    """Labels of a JSON object; string values, and numbers as their JSON text (as Loki reads them)."""
    if not isinstance(value, dict):
        raise ProtocolError(400, "invalid-json", f"{where} is not an object of labels")
    labels: dict[str, str] = {}
    for name, label in value.items():
        if isinstance(label, str):
            labels[name] = label
        elif isinstance(label, int | float) and not isinstance(label, bool):
            labels[name] = orjson.dumps(label).decode()
        else:
            raise ProtocolError(400, "invalid-json", f"{where}.{name} is not a string")
    return labels


def _json_entry(entry: Any, labels: dict[str, str]) -> DecodedRecord:
    if not isinstance(entry, list) or len(entry) < 2:
        raise _Rejected(
            "invalid-entry", 'an entry is ["<unix ns>", "<line>"] or ["<unix ns>", "<line>", {metadata}]'
        )
    stamp, line = entry[0], entry[1]
    # Loki reads it with ParseInt(s, 10, 64): decimal digits, an optional sign, within int64.
    if not isinstance(stamp, str) or not _NANOS.match(stamp) or not -(2**63) <= int(stamp) < 2**63:
        raise _Rejected("invalid-timestamp", "an entry's timestamp is a string of Unix nanoseconds")
    if not isinstance(line, str):
        raise _Rejected("invalid-entry", "an entry's line is a string")
    metadata: dict[str, str] = {}
    if len(entry) > 2:
        given = entry[2]
        if not isinstance(given, dict):
            raise _Rejected("invalid-metadata", "structured metadata is an object of strings")
        nested = given.get("structuredMetadata")
        try:
            # Loki also reads the query-response form {"structuredMetadata": {...}, "parsed": {...}}.
            metadata = _json_labels(nested if isinstance(nested, dict) else given, "metadata")
        except ProtocolError:
            raise _Rejected("invalid-metadata", "structured metadata is an object of strings") from None
    return _record(line, labels, metadata, int(stamp), _level(labels))


# --- both ---------------------------------------------------------------------------------------


def _record(
    line: str, labels: dict[str, str], metadata: dict[str, str] | None, nanos: int, stream_level: str | None
) -> DecodedRecord:
    fields: dict[str, Any] = {"text": line}
    if metadata:
        attributes = {**labels, **metadata}
        level = _level(metadata) or stream_level
    else:
        attributes = labels.copy()
        level = stream_level
    if level:
        fields["level"] = level
    if attributes:
        fields["attributes"] = attributes
    return DecodedRecord(
        kind="log", body=fields, timestamp=from_unix_nanos(nanos) if nanos > 0 else None, nanos=(nanos,)
    )


def _level(labels: dict[str, str]) -> str | None:
    return next((labels[key] for key in _LEVEL_KEYS if labels.get(key)), None)
