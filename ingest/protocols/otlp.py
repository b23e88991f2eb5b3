"""OTLP/HTTP logs (``POST /v1/logs``), as the opentelemetry-proto specification defines it.

Requests are an ``ExportLogsServiceRequest`` in binary protobuf (``application/x-protobuf``) or in the
OTLP JSON mapping (``application/json``): proto3 JSON with lowerCamelCase names, integer enums, 64-bit
integers as strings (numbers accepted too), unknown fields ignored, and trace/span ids as hex rather
than proto3's base64. Responses use the request's encoding: an ``ExportLogsServiceResponse`` (with
``partial_success`` only when records were rejected) on success, a ``google.rpc.Status`` on failure.

Each LogRecord becomes one ``kind="log"`` record:
- ``text``: a string body as it is; any other body (kvlist, array, int, double, bool, bytes) as its
  JSON text, with the structured value also kept as ``attributes["body"]``; no body gives ``""``.
- ``level``: ``severity_text`` when set, else ``severity_number`` as TRACE/DEBUG/INFO/WARN/ERROR/FATAL.
- ``timestamp``: ``time_unix_nano``, else ``observed_time_unix_nano`` (0 means unset), in microseconds.
- ``attributes``: the record's attributes as plain JSON values (int64 -> int, bytes -> base64 text,
  kvlist -> object, array -> list), then the data model's own fields under their snake_case names,
  which take precedence over a log attribute of the same name: ``trace_id``/``span_id`` (hex),
  ``trace_flags`` (the W3C flags byte), ``severity_number``, ``body`` (structured bodies only),
  ``resource`` (resource attributes) and ``scope`` (``name``, ``version``, ``attributes``). Empty
  fields are left out. Records of one ResourceLogs/ScopeLogs share the same ``resource``/``scope``
  objects: treat them as read-only.
- ``event_type``: the LogRecord's ``event_name``, else its ``event.name`` attribute.
- ``client_id``: None; OTLP gives a record no id of its own.

A record whose trace or span id is neither empty nor 16/8 bytes is refused alone (``invalid-trace-id``
/ ``invalid-span-id``); an ``ItemError.index`` counts LogRecords across the request in order, and the
records that are returned take the remaining indexes in order.

protobuf and the generated classes are imported on first use, never when this module is imported.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson

from ingest.problems import ItemError
from ingest.protocols.records import Decoded, DecodedRecord, ProtocolError
from ingest.protocols.timestamps import from_unix_nanos

if TYPE_CHECKING:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MEDIA_TYPES = (PROTOBUF, JSON)

# SeverityNumber ranges of the logs data model: 1-4 TRACE, 5-8 DEBUG, ... 21-24 FATAL.
_SEVERITY_NAMES = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
_TRACE_ID_BYTES = 16
_SPAN_ID_BYTES = 8
_MAX_MESSAGE_CHARS = 300
# google.rpc.Code for an HTTP status, as the Collector's OTLP receiver maps them (httphelper.go).
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 12, 429: 8, 502: 14, 503: 14, 504: 14}
_GRPC_UNKNOWN = 2


def media_type(content_type: str | None) -> str:
    """The bare, lower-cased media type of a Content-Type header (parameters dropped)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def response_is_json(content_type: str | None) -> bool:
    """Whether the response to a request with this Content-Type is JSON (else binary protobuf)."""
    return media_type(content_type) == JSON


def decode(body: bytes, content_type: str) -> Decoded:
    """The log records of one OTLP/HTTP logs request; ``ProtocolError`` when it cannot be decoded."""
    kind = media_type(content_type)
    if kind == PROTOBUF:
        return _records(_parse_protobuf(body))
    if kind == JSON:
        return _records(_parse_json(body))
    raise ProtocolError(
        415,
        "unsupported-media-type",
        f"Content-Type {kind or '(none)'!r} is not an OTLP encoding; use {PROTOBUF} or {JSON}",
    )


def encode_success(rejected: int, message: str, json: bool) -> tuple[bytes, str]:
    """An ``ExportLogsServiceResponse`` body and its Content-Type, for a 200 answer.

    ``partial_success`` is set only when ``rejected`` > 0 (the spec requires it unset on full
    success), with ``rejected_log_records`` and ``message`` as its ``error_message``.
    """
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

    response = ExportLogsServiceResponse()
    if rejected > 0:
        response.partial_success.rejected_log_records = rejected
        response.partial_success.error_message = message
    if json:
        return orjson.dumps(json_format.MessageToDict(response)), JSON
    return response.SerializeToString(), PROTOBUF


def encode_status(status_code: int, message: str, json: bool) -> tuple[bytes, str]:
    """A ``google.rpc.Status`` body and its Content-Type, for a 4xx/5xx answer with HTTP ``status_code``.

    ``Status.code`` is the gRPC code the OpenTelemetry Collector gives that HTTP status (clients act on
    the HTTP status, not on this); ``Status.message`` is ``message``.
    """
    from google.protobuf import json_format

    status = _status_class()(code=_GRPC_CODES.get(status_code, _GRPC_UNKNOWN), message=message)
    if json:
        return orjson.dumps(json_format.MessageToDict(status)), JSON
    return status.SerializeToString(), PROTOBUF


def _status_class() -> Any:
    """``google.rpc.Status`` (code = 1, message = 2; ``details`` is never sent, so not declared).

    Built once from a descriptor in a private pool: protobuf does not ship google/rpc/status.proto, and
    googleapis-common-protos for one two-field message is not worth a dependency.
    """
    global _STATUS
    if _STATUS is None:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

        FieldProto = descriptor_pb2.FieldDescriptorProto
        file = descriptor_pb2.FileDescriptorProto(name="sluice/google/rpc/status.proto", package="google.rpc")
        file.syntax = "proto3"
        status = file.message_type.add(name="Status")
        status.field.add(name="code", number=1, type=FieldProto.TYPE_INT32, label=FieldProto.LABEL_OPTIONAL)
        status.field.add(
            name="message", number=2, type=FieldProto.TYPE_STRING, label=FieldProto.LABEL_OPTIONAL
        )
        pool = descriptor_pool.DescriptorPool()
        pool.Add(file)
        _STATUS = message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))
    return _STATUS


_STATUS: Any = None


def _parse_protobuf(body: bytes) -> ExportLogsServiceRequest:
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise ProtocolError(
            400, "invalid-protobuf", _short(f"not an ExportLogsServiceRequest: {exc}")
        ) from None
    return request


def _parse_json(body: bytes) -> ExportLogsServiceRequest:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(400, "invalid-json", _short(f"malformed JSON: {exc}")) from None
    if not isinstance(document, dict):
        raise ProtocolError(400, "invalid-json", "an OTLP JSON request must be a JSON object")
    _hex_ids_to_base64(document)
    request = ExportLogsServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        # ParseError for what the mapping refuses; ValueError/TypeError/RecursionError for what it does
        # not expect (a list where an object belongs, an id that is not text, very deep nesting).
        raise ProtocolError(
            400, "invalid-json", _short(f"not an OTLP ExportLogsServiceRequest: {exc}")
        ) from None
    return request


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """Rewrite OTLP JSON's hex trace/span ids as proto3 JSON's base64, in place, for ``ParseDict``.

    Only well-shaped paths are touched; anything else is left for ``ParseDict`` to refuse.
    """
    for resource_logs in _dicts(document.get("resourceLogs", document.get("resource_logs"))):
        for scope_logs in _dicts(resource_logs.get("scopeLogs", resource_logs.get("scope_logs"))):
            for record in _dicts(scope_logs.get("logRecords", scope_logs.get("log_records"))):
                for name in ("traceId", "trace_id", "spanId", "span_id"):
                    value = record.get(name)
                    if isinstance(value, str):
                        try:
                            raw = binascii.unhexlify(value)
                        except (binascii.Error, ValueError):
                            raise ProtocolError(
                                400, "invalid-json", _short(f"{name} {value!r} is not hex-encoded")
                            ) from None
                        record[name] = base64.b64encode(raw).decode("ascii")


def _dicts(value: Any) -> Iterable[dict[str, Any]]:
    return (item for item in value if isinstance(item, dict)) if isinstance(value, list) else ()


class _Rejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _records(request: ExportLogsServiceRequest) -> Decoded:
    records: list[DecodedRecord] = []
    errors: list[ItemError] = []
    index = 0
    for resource_logs in request.resource_logs:
        resource = _attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            scope = _scope(scope_logs.scope)
            for log_record in scope_logs.log_records:
                try:
                    records.append(_record(log_record, resource, scope))
                except _Rejected as rejected:
                    errors.append(ItemError(index, rejected.code, rejected.message))
                index += 1
    return Decoded(records, errors)


def _record(log: LogRecord, resource: dict[str, Any], scope: dict[str, Any]) -> DecodedRecord:
    # Each field of a upb message costs a lookup from Python: every one is read once.
    attributes = _attributes(log.attributes)
    trace_id, span_id, flags, severity = log.trace_id, log.span_id, log.flags, log.severity_number
    if trace_id:
        if len(trace_id) != _TRACE_ID_BYTES:
            raise _Rejected("invalid-trace-id", f"trace_id must be {_TRACE_ID_BYTES} bytes")
        attributes["trace_id"] = trace_id.hex()
    if span_id:
        if len(span_id) != _SPAN_ID_BYTES:
            raise _Rejected("invalid-span-id", f"span_id must be {_SPAN_ID_BYTES} bytes")
        attributes["span_id"] = span_id.hex()
    if flags & 0xFF:
        attributes["trace_flags"] = flags & 0xFF
    if severity:
        attributes["severity_number"] = severity
    body = log.body
    text = body.string_value
    if not text and body.WhichOneof("value") not in (None, "string_value"):
        structured = _plain(body)
        attributes["body"] = structured
        text = orjson.dumps(structured).decode()
    if resource:
        attributes["resource"] = resource
    if scope:
        attributes["scope"] = scope
    fields: dict[str, Any] = {"text": text}
    level = log.severity_text or _severity_name(severity)
    if level:
        fields["level"] = level
    if attributes:
        fields["attributes"] = attributes
    event_type = log.event_name or attributes.get("event.name")
    nanos = log.time_unix_nano or log.observed_time_unix_nano
    return DecodedRecord(
        kind="log",
        body=fields,
        event_type=event_type if isinstance(event_type, str) and event_type else None,
        timestamp=from_unix_nanos(nanos) if nanos else None,
    )


def _severity_name(number: int) -> str | None:
    return _SEVERITY_NAMES[(number - 1) // 4] if 1 <= number <= 24 else None


def _scope(scope: InstrumentationScope) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if scope.name:
        found["name"] = scope.name
    if scope.version:
        found["version"] = scope.version
    if scope.attributes:
        found["attributes"] = _attributes(scope.attributes)
    return found


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _plain(pair.value) for pair in pairs}


def _plain(value: AnyValue) -> Any:
    """An AnyValue as a plain JSON value; an unset value (or a profiles string-table index) is None."""
    text = value.string_value  # most values are strings: one lookup instead of two
    if text:
        return text
    kind = value.WhichOneof("value")
    convert = _CONVERT.get(kind) if kind else None
    return convert(value) if convert else None


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "string_value": lambda v: v.string_value,
    "int_value": lambda v: v.int_value,
    "bool_value": lambda v: v.bool_value,
    "double_value": lambda v: v.double_value,
    "bytes_value": lambda v: base64.b64encode(v.bytes_value).decode("ascii"),
    "array_value": lambda v: [_plain(item) for item in v.array_value.values],
    "kvlist_value": lambda v: _attributes(v.kvlist_value.values),
}


def _short(message: str) -> str:
    """The message within the cap, keeping its start and its end (nested parse errors end with the cause)."""
    if len(message) <= _MAX_MESSAGE_CHARS:
        return message
    half = (_MAX_MESSAGE_CHARS - 5) // 2
    return f"{message[:half]} ... {message[-half:]}"
