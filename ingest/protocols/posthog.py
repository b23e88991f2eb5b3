"""PostHog capture, as posthog-python and posthog-js send it: ``POST /batch/``, ``/capture/``, ``/e/``,
``/i/v0/e/`` (each with or without its trailing slash).

Bodies (PostHog's ``capture`` endpoint, legacy v0):
- JSON: ``{"api_key", "batch": [event...], "sent_at"?}`` (posthog-python's ``/batch/``), one event
  object ``{"api_key"|"token", "event", "distinct_id"|"properties.distinct_id", "properties",
  "uuid"?, "timestamp"?}``, or an array of events (posthog-js), each carrying its key in
  ``properties.token``.
- compressed: gzip (``Content-Encoding: gzip``, undone by the service; ``compression=gzip-js`` or
  ``gzip`` in the query, or the gzip magic bytes, undone here); ``compression=lz64`` (query or form
  field): lz-string base64 (``ingest/protocols/lzstring.py``).
- ``application/x-www-form-urlencoded``: ``data=<JSON, base64 JSON or lz64>`` (posthog-js's legacy
  transport), ``compression`` may be a field of the form.

Every key the request carries (``api_key``/``token`` at the top, and ``api_key``/``token``/
``properties.token`` of each event) must be the same key: ``Decoded`` comes with ``keys``, the set
found, for the caller to authenticate; all of them are removed from the stored payloads.

Each event becomes one ``kind="event"`` record: ``event`` as type, ``uuid`` as client id (a batch
sent again maps to the same event ids), ``timestamp`` (ISO 8601) as time, the event object as body
(``distinct_id`` kept at the top, from ``properties.distinct_id`` when only there). Refused alone: an
event that is not an object, without an ``event`` name or a ``distinct_id``, or with a ``uuid`` that
is not a string. Refused whole: bodies that cannot be decoded (400), or inflate beyond the cap (413).

The answers posthog-python reads (``posthog/request.py``): 200 is success (it parses no body; PostHog
sends ``{"status": 1}``); any other status is an error whose ``detail`` it reports; it retries 408,
429 and 5xx and gives up on other 4xx.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from ingest.problems import ItemError
from ingest.protocols.lzstring import LzStringError, decompress_from_base64
from ingest.protocols.records import Decoded, DecodedRecord, ProtocolError
from ingest.protocols.timestamps import from_iso8601

SUCCESS_BODY = b'{"status":1}'
CONTENT_TYPE = "application/json"
FORM = "application/x-www-form-urlencoded"
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
MAX_UUID_CHARS = 256
_GZIP_MAGIC = b"\x1f\x8b"
_KEY_FIELDS = ("api_key", "token")
_ERROR_TYPES = {401: "authentication_error", 403: "authentication_error", 429: "throttled"}


@dataclass(frozen=True)
class Capture:
    """The records of one capture request, and every API key it carries (to authenticate)."""

    decoded: Decoded
    keys: frozenset[str] = field(default_factory=frozenset)


def decode(
    body: bytes,
    content_type: str | None,
    compression: str | None = None,
    *,
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES,
) -> Capture:
    """The events of one capture request. ``compression``: the ``compression`` query parameter."""
    document = _document(body, content_type, (compression or "").strip().lower(), max_decompressed_bytes)
    keys: set[str] = set()
    if isinstance(document, dict):
        keys.update(_take_keys(document))
        if "batch" in document:
            events = document["batch"]
            if not isinstance(events, list):
                raise ProtocolError(400, "invalid-batch", "'batch' must be an array of events")
        else:
            events = [document]
    elif isinstance(document, list):
        events = document
    else:
        raise ProtocolError(400, "invalid-json", "the body must be a JSON object or array of events")
    records: list[DecodedRecord] = []
    errors: list[ItemError] = []
    for index, event in enumerate(events):
        if isinstance(event, dict):
            keys.update(_take_keys(event))
            properties = event.get("properties")
            if isinstance(properties, dict):
                keys.update(_take_keys(properties))
        try:
            records.append(_record(event))
        except _Refused as refused:
            errors.append(ItemError(index, refused.code, refused.message))
    return Capture(Decoded(records, errors), frozenset(keys))


def encode_success() -> tuple[int, bytes, str]:
    """PostHog's answer to an accepted capture: 200 ``{"status": 1}``."""
    return 200, SUCCESS_BODY, CONTENT_TYPE


def encode_error(status: int, code: str, detail: str) -> tuple[bytes, str]:
    """PostHog's error shape (``type``, ``code``, ``detail``, ``attr``); posthog-python reports ``detail``."""
    kind = _ERROR_TYPES.get(status) or ("server_error" if status >= 500 else "validation_error")
    return orjson.dumps({"type": kind, "code": code, "detail": detail, "attr": None}), CONTENT_TYPE


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _take_keys(obj: dict[str, Any]) -> list[str]:
    """Remove the key fields of ``obj`` and return their values (a non-text value is no key: 401)."""
    found = []
    for name in _KEY_FIELDS:
        if name in obj:
            value = obj.pop(name)
            found.append(value if isinstance(value, str) else "")
    return found


def _record(event: Any) -> DecodedRecord:
    if not isinstance(event, dict):
        raise _Refused("not-an-object", "an event must be a JSON object")
    name = event.get("event")
    if not isinstance(name, str) or not name:
        raise _Refused("missing-event", "an event needs an 'event' name")
    properties = event.get("properties")
    distinct_id = event.get("distinct_id")
    if distinct_id is None and isinstance(properties, dict):
        distinct_id = properties.get("distinct_id")
    if distinct_id is None or distinct_id == "" or isinstance(distinct_id, dict | list | bool):
        raise _Refused("missing-distinct-id", "an event needs a 'distinct_id'")
    uuid = event.get("uuid")
    if uuid is not None and (not isinstance(uuid, str) or not uuid or len(uuid) > MAX_UUID_CHARS):
        raise _Refused("invalid-uuid", f"'uuid' must be a string of 1 to {MAX_UUID_CHARS} characters")
    body = dict(event)
    body["distinct_id"] = distinct_id
    return DecodedRecord(
        kind="event",
        body=body,
        client_id=uuid,
        event_type=name,
        timestamp=from_iso8601(event.get("timestamp")),
    )


def _document(body: bytes, content_type: str | None, compression: str, cap: int) -> Any:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == FORM:
        try:
            fields = dict(
                urllib.parse.parse_qsl(body.decode("ascii"), keep_blank_values=True, max_num_fields=50)
            )
        except (UnicodeDecodeError, ValueError):
            raise ProtocolError(400, "invalid-form", "the body is not a urlencoded form") from None
        if "data" not in fields:
            raise ProtocolError(400, "invalid-form", "a capture form needs a 'data' field")
        compression = (fields.get("compression") or compression).strip().lower()
        return _payload(fields["data"].encode("utf-8"), compression, cap, form=True)
    return _payload(body, compression, cap, form=False)


def _payload(data: bytes, compression: str, cap: int, *, form: bool) -> Any:
    if compression == "lz64":
        try:
            text = decompress_from_base64(data.decode("ascii").strip(), cap)
        except UnicodeDecodeError:
            raise ProtocolError(400, "invalid-lz64", "the body is not lz-string base64") from None
        except LzStringError as exc:
            status = 413 if "inflates" in str(exc) else 400
            raise ProtocolError(
                status, "decompressed-too-large" if status == 413 else "invalid-lz64", str(exc)
            ) from None
        return _json(text.encode("utf-8"))
    if compression in ("gzip", "gzip-js") or data.startswith(_GZIP_MAGIC):
        return _json(_gunzip(data, cap))
    if form and data.lstrip()[:1] not in (b"{", b"["):
        try:
            data = base64.b64decode(data, validate=False)
        except (binascii.Error, ValueError):
            raise ProtocolError(
                400, "invalid-base64", "the form's data is not JSON nor base64 JSON"
            ) from None
    return _json(data)


def _gunzip(data: bytes, cap: int) -> bytes:
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, cap + 1)
    except zlib.error:
        raise ProtocolError(400, "invalid-gzip", "the body is not gzip") from None
    if len(out) > cap:
        raise ProtocolError(413, "decompressed-too-large", f"the body inflates beyond {cap} bytes")
    return out


def _json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ProtocolError(400, "invalid-json", "the body is not JSON") from None
