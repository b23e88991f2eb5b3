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
- ``client_id``: None; OTLP gives a record no id of its own. ``nanos``: (time, observed time) as sent,
  for the service's content identity of the record.

A record whose trace or span id is neither empty nor 16/8 bytes is refused alone (``invalid-trace-id``
/ ``invalid-span-id``); an ``ItemError.index`` counts LogRecords across the request in order, and the
records that are returned take the remaining indexes in order.

JSON in the canonical form exporters write (lowerCamelCase, 64-bit integers as decimal strings,
integer enums, hex ids, no nulls, no bytes values) is mapped straight from orjson's objects; any
other JSON goes through protobuf's ``json_format.ParseDict`` (``ignore_unknown_fields``), after the
hex ids are rewritten as the base64 proto3 JSON expects. Both give the same records (a property test
compares them), and a request ParseDict refuses is refused.

protobuf and the generated classes are imported on first use, never when this module is imported.
"""

from __future__ import annotations

import base64
import binascii
import math
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
        document = _load_json(body)
        try:
            return _canonical_json_records(document)
        except _NotCanonical:
            return _records(_parse_json(document))
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


def _load_json(body: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(400, "invalid-json", _short(f"malformed JSON: {exc}")) from None
    if not isinstance(document, dict):
        raise ProtocolError(400, "invalid-json", "an OTLP JSON request must be a JSON object")
    return document


def _parse_json(document: dict[str, Any]) -> ExportLogsServiceRequest:
    """The request through protobuf's own JSON mapping (every form it accepts), ids made base64 first."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

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


def _add_trace_fields(
    attributes: dict[str, Any], trace_id: bytes, span_id: bytes, flags: int, severity: int
) -> None:
    """The log data model's trace context and severity number, as attributes; both decode paths use it.

    A trace or span id of the wrong length refuses the record alone (``_Rejected``)."""
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


def _record(log: LogRecord, resource: dict[str, Any], scope: dict[str, Any]) -> DecodedRecord:
    # Each field of a upb message costs a lookup from Python: every one is read once.
    attributes = _attributes(log.attributes)
    trace_id, span_id, flags, severity = log.trace_id, log.span_id, log.flags, log.severity_number
    _add_trace_fields(attributes, trace_id, span_id, flags, severity)
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
    time_nanos, observed_nanos = log.time_unix_nano, log.observed_time_unix_nano
    nanos = time_nanos or observed_nanos
    return DecodedRecord(
        kind="log",
        body=fields,
        event_type=event_type if isinstance(event_type, str) and event_type else None,
        timestamp=from_unix_nanos(nanos) if nanos else None,
        nanos=(time_nanos, observed_nanos),
    )


# --- OTLP JSON in its canonical form, without protobuf -------------------------------------------
#
# json_format.ParseDict costs about ten times the whole decode of the same request in protobuf. What
# exporters send is one canonical form: lowerCamelCase names, 64-bit integers as decimal strings,
# integer enums, hex ids, no nulls. That form is mapped here straight from orjson's dicts, to the very
# records _record makes from protobuf; on anything else (an unknown or snake_case field, a null, a
# number where a string is usual, bytes, NaN...) _NotCanonical sends the whole request through
# ParseDict instead, so every form the mapping allows is still decoded exactly as protobuf's own code
# decodes it. A property test holds the two paths equal.


class _NotCanonical(Exception):
    pass


_REQUEST_KEYS = frozenset({"resourceLogs"})
_RESOURCE_LOGS_KEYS = frozenset({"resource", "scopeLogs", "schemaUrl"})
_RESOURCE_KEYS = frozenset({"attributes", "droppedAttributesCount"})
_SCOPE_LOGS_KEYS = frozenset({"scope", "logRecords", "schemaUrl"})
_SCOPE_KEYS = frozenset({"name", "version", "attributes", "droppedAttributesCount"})
_RECORD_KEYS = frozenset(
    {
        "timeUnixNano",
        "observedTimeUnixNano",
        "severityNumber",
        "severityText",
        "body",
        "attributes",
        "droppedAttributesCount",
        "flags",
        "traceId",
        "spanId",
        "eventName",
    }
)
_KEY_VALUE_KEYS = frozenset({"key", "value"})
_VALUES_KEYS = frozenset({"values"})
_UINT64 = 2**64
_INT64 = 2**63
_UINT32 = 2**32
_INT32 = 2**31
# Nesting of AnyValues the canonical path follows: far below ParseDict's limit of 100 messages, which
# deeper requests go on to meet (and be refused by) on the ParseDict path.
_MAX_CANONICAL_DEPTH = 16


def _canonical_json_records(document: dict[str, Any]) -> Decoded:
    records: list[DecodedRecord] = []
    errors: list[ItemError] = []
    index = 0
    if not document.keys() <= _REQUEST_KEYS:
        raise _NotCanonical
    for resource_logs in _objects(document, "resourceLogs"):
        if not resource_logs.keys() <= _RESOURCE_LOGS_KEYS:
            raise _NotCanonical
        _string(resource_logs, "schemaUrl")
        resource_object = _object(resource_logs, "resource", _RESOURCE_KEYS)
        _number(resource_object, "droppedAttributesCount", 0, _UINT32)
        resource = _json_attributes(resource_object)
        for scope_logs in _objects(resource_logs, "scopeLogs"):
            if not scope_logs.keys() <= _SCOPE_LOGS_KEYS:
                raise _NotCanonical
            _string(scope_logs, "schemaUrl")
            scope = _json_scope(_object(scope_logs, "scope", _SCOPE_KEYS))
            for log in _objects(scope_logs, "logRecords"):
                if not log.keys() <= _RECORD_KEYS:
                    raise _NotCanonical
                try:
                    records.append(_json_record(log, resource, scope))
                except _Rejected as rejected:
                    errors.append(ItemError(index, rejected.code, rejected.message))
                index += 1
    return Decoded(records, errors)


def _json_record(log: dict[str, Any], resource: dict[str, Any], scope: dict[str, Any]) -> DecodedRecord:
    # Every field is checked before a record is refused alone: ParseDict refuses a malformed field
    # for the whole request, and this path must refuse (by leaving it to ParseDict) the same requests.
    attributes = _json_attributes(log)
    _number(log, "droppedAttributesCount", 0, _UINT32)
    trace_id, span_id = _hex(log, "traceId"), _hex(log, "spanId")
    flags = _number(log, "flags", 0, _UINT32)
    severity = _number(log, "severityNumber", -_INT32, _INT32)
    severity_text, event_name = _string(log, "severityText"), _string(log, "eventName")
    time_nanos, observed_nanos = _uint64(log, "timeUnixNano"), _uint64(log, "observedTimeUnixNano")
    body = log.get("body", _NO_VALUE)
    if type(body) is not dict:
        raise _NotCanonical
    text = body.get("stringValue")
    structured = None if type(text) is str or not body else _json_plain(body, 0)
    _add_trace_fields(attributes, trace_id, span_id, flags, severity)
    if type(text) is not str:
        text = ""
        if body:
            attributes["body"] = structured
            text = orjson.dumps(structured).decode()
    if resource:
        attributes["resource"] = resource
    if scope:
        attributes["scope"] = scope
    fields: dict[str, Any] = {"text": text}
    level = severity_text or _severity_name(severity)
    if level:
        fields["level"] = level
    if attributes:
        fields["attributes"] = attributes
    event_type = event_name or attributes.get("event.name")
    nanos = time_nanos or observed_nanos
    return DecodedRecord(
        kind="log",
        body=fields,
        event_type=event_type if isinstance(event_type, str) and event_type else None,
        timestamp=from_unix_nanos(nanos) if nanos else None,
        nanos=(time_nanos, observed_nanos),
    )


_NO_VALUE: dict[str, Any] = {}


def _objects(parent: dict[str, Any], name: str) -> list[dict[str, Any]]:
    value = parent.get(name, _NO_LIST)
    if type(value) is not list or not all(type(item) is dict for item in value):
        raise _NotCanonical
    return value


_NO_LIST: list[Any] = []


def _object(parent: dict[str, Any], name: str, allowed: frozenset[str]) -> dict[str, Any]:
    value = parent.get(name, _NO_VALUE)
    if type(value) is not dict or not value.keys() <= allowed:
        raise _NotCanonical
    return value


def _string(parent: dict[str, Any], name: str) -> str:
    value = parent.get(name, "")
    if type(value) is not str:
        raise _NotCanonical
    return value


def _number(parent: dict[str, Any], name: str, low: int, high: int) -> int:
    value = parent.get(name, 0)
    if type(value) is not int or not low <= value < high:
        raise _NotCanonical
    return value


def _uint64(parent: dict[str, Any], name: str) -> int:
    value = parent.get(name, "0")
    if type(value) is not str or not (value.isascii() and value.isdigit()) or len(value) > 20:
        raise _NotCanonical
    number = int(value)
    if number >= _UINT64:
        raise _NotCanonical
    return number


def _hex(parent: dict[str, Any], name: str) -> bytes:
    value = parent.get(name, "")
    if type(value) is not str:
        raise _NotCanonical
    try:
        return binascii.unhexlify(value)
    except (binascii.Error, ValueError):
        raise _NotCanonical from None


def _json_scope(scope: dict[str, Any]) -> dict[str, Any]:
    _number(scope, "droppedAttributesCount", 0, _UINT32)
    found: dict[str, Any] = {}
    name, version = _string(scope, "name"), _string(scope, "version")
    if name:
        found["name"] = name
    if version:
        found["version"] = version
    attributes = _json_attributes(scope)
    if attributes:
        found["attributes"] = attributes
    return found


def _json_attributes(parent: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for pair in _objects(parent, "attributes"):
        if not pair.keys() <= _KEY_VALUE_KEYS:
            raise _NotCanonical
        value = pair.get("value", _NO_VALUE)
        if type(value) is not dict:
            raise _NotCanonical
        found[_string(pair, "key")] = _json_plain(value, depth)
    return found


def _json_plain(value: dict[str, Any], depth: int) -> Any:
    if len(value) > 1 or depth > _MAX_CANONICAL_DEPTH:
        raise _NotCanonical
    for kind, item in value.items():
        if kind == "stringValue" and type(item) is str:
            return item
        convert = _JSON_CONVERT.get(kind)
        if convert is None:
            raise _NotCanonical
        return convert(item, depth + 1)
    return None


def _json_int(item: Any, depth: int) -> int:
    if type(item) is not str or not item.isascii() or not item.lstrip("-").isdigit() or item.count("-") > 1:
        raise _NotCanonical
    number = int(item)
    if not -_INT64 <= number < _INT64 or (item.startswith("-") and number == 0):
        raise _NotCanonical
    return number


def _json_double(item: Any, depth: int) -> float:
    if (type(item) is not float and type(item) is not int) or not math.isfinite(item):
        raise _NotCanonical
    return float(item)


def _json_bool(item: Any, depth: int) -> bool:
    if type(item) is not bool:
        raise _NotCanonical
    return item


def _json_list(item: Any, depth: int) -> list[Any]:
    if type(item) is not dict or not item.keys() <= _VALUES_KEYS:
        raise _NotCanonical
    values = item.get("values", _NO_LIST)
    if type(values) is not list:
        raise _NotCanonical
    out = []
    for element in values:
        if type(element) is not dict:
            raise _NotCanonical
        out.append(_json_plain(element, depth))
    return out


def _json_kvlist(item: Any, depth: int) -> dict[str, Any]:
    if type(item) is not dict or not item.keys() <= _VALUES_KEYS:
        raise _NotCanonical
    return _json_attributes({"attributes": item.get("values", _NO_LIST)}, depth)


_JSON_CONVERT: dict[str, Callable[[Any, int], Any]] = {
    "boolValue": _json_bool,
    "intValue": _json_int,
    "doubleValue": _json_double,
    "arrayValue": _json_list,
    "kvlistValue": _json_kvlist,
}


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
