"""The Snowplow tracker protocol, as Snowplow's trackers send it to a collector.

Two forms:
- ``POST /com.snowplowanalytics.snowplow/tp2``: a self-describing ``payload_data`` JSON,
  ``{"schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-x", "data": [event...]}``,
  each event a flat object of tracker-protocol fields (all values text).
- ``GET /i``: one event as query parameters (the pixel), answered with a 1x1 GIF.

Each event becomes one ``kind="event"`` record:
- ``event_type``: the event code ``e`` (``pv``, ``pp``, ``se``, ``ue``, ``tr``, ``ti``...); for a
  self-describing event (``ue``) ``ue:<schema>`` of the inner event, since the schema is what it means.
- ``client_id``: ``eid`` (the event UUID the tracker generated), so a batch sent again maps to the
  same event ids.
- ``timestamp``: ``ttm`` (the true timestamp), else ``dtm`` (created on the device), in Unix ms.
- ``body``: the fields as sent, but the self-describing event (``ue_pr``, JSON, or ``ue_px``, base64)
  as ``unstruct_event`` and the contexts (``co``, JSON, or ``cx``, base64) as ``contexts``, both decoded
  (standard or URL-safe base64, padding optional, as the trackers vary).

Refused alone (``ItemError``): an event that is not an object, has no ``e``, an ``eid`` that is not
text, or an undecodable ``ue_*``/``co``/``cx``. Refused whole (``ProtocolError``): a body that is not
JSON or not a ``payload_data`` object.

Trackers read only the status: 2xx is success; the Python tracker retries any other status except
400, 401, 403, 410 and 422.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import orjson

from ingest.problems import ItemError
from ingest.protocols.records import Decoded, DecodedRecord, ProtocolError
from ingest.protocols.timestamps import from_unix_seconds

PAYLOAD_DATA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-"
# A transparent 1x1 GIF, what a collector answers to the pixel.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
PIXEL_CONTENT_TYPE = "image/gif"
MAX_EID_CHARS = 256
_ENCODED = (("ue_pr", "ue_px", "unstruct_event"), ("co", "cx", "contexts"))


def decode_post(body: bytes) -> Decoded:
    """The events of a ``tp2`` POST."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ProtocolError(400, "invalid-json", "the body is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise ProtocolError(
            400, "invalid-payload", "the body must be a payload_data object with a 'data' array"
        )
    schema = document.get("schema")
    if not isinstance(schema, str) or not schema.startswith(PAYLOAD_DATA):
        raise ProtocolError(400, "invalid-payload", f"'schema' must be {PAYLOAD_DATA}x-y")
    records: list[DecodedRecord] = []
    errors: list[ItemError] = []
    for index, event in enumerate(document["data"]):
        try:
            records.append(_record(event))
        except _Refused as refused:
            errors.append(ItemError(index, refused.code, refused.message))
    return Decoded(records, errors)


def decode_get(params: Mapping[str, str]) -> Decoded:
    """The one event of a pixel request (its query parameters)."""
    try:
        return Decoded([_record(dict(params))])
    except _Refused as refused:
        return Decoded(errors=[ItemError(0, refused.code, refused.message)])


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _record(event: Any) -> DecodedRecord:
    if not isinstance(event, dict):
        raise _Refused("not-an-object", "an event must be a JSON object")
    code = event.get("e")
    if not isinstance(code, str) or not code:
        raise _Refused("missing-event", "an event needs its event code 'e'")
    eid = event.get("eid")
    if eid is not None and (not isinstance(eid, str) or not eid or len(eid) > MAX_EID_CHARS):
        raise _Refused("invalid-eid", f"'eid' must be text of 1 to {MAX_EID_CHARS} characters")
    body = dict(event)
    for plain, encoded, name in _ENCODED:
        raw_plain, raw_encoded = body.pop(plain, None), body.pop(encoded, None)
        if raw_plain is not None or raw_encoded is not None:
            body[name] = _self_describing(raw_plain, raw_encoded, plain, encoded)
    event_type = code
    if code == "ue":
        inner = (
            (body.get("unstruct_event") or {}).get("data")
            if isinstance(body.get("unstruct_event"), dict)
            else None
        )
        schema = inner.get("schema") if isinstance(inner, dict) else None
        if isinstance(schema, str) and schema:
            event_type = f"ue:{schema}"
    return DecodedRecord(
        kind="event",
        body=body,
        client_id=eid,
        event_type=event_type,
        timestamp=_millis(event.get("ttm")) or _millis(event.get("dtm")),
    )


def _self_describing(plain: Any, encoded: Any, plain_name: str, encoded_name: str) -> Any:
    try:
        if plain is not None:
            if not isinstance(plain, str):
                return plain  # already JSON (a tracker that nests it)
            return orjson.loads(plain)
        if not isinstance(encoded, str):
            raise ValueError
        text = encoded.strip().replace("-", "+").replace("_", "/").replace(" ", "+")
        return orjson.loads(base64.b64decode(text + "=" * (-len(text) % 4), validate=True))
    except (orjson.JSONDecodeError, binascii.Error, ValueError):
        name = plain_name if plain is not None else encoded_name
        raise _Refused("invalid-self-describing", f"'{name}' is not (base64) JSON") from None


def _millis(value: Any) -> str | None:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 15:
        return from_unix_seconds(int(value) / 1000)
    return None
