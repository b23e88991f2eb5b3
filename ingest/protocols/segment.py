"""The Segment HTTP Tracking API, as Segment documents it and RudderStack implements it.

Routes: ``POST /v1/batch`` (``{"batch": [message...], "context"?, "integrations"?, "sentAt"?,
"writeKey"?}``) and one message per request on ``POST /v1/track``, ``/v1/identify``, ``/v1/page``,
``/v1/screen``, ``/v1/group``, ``/v1/alias`` (the path names the type when the message does not).
The service undoes ``Content-Encoding: gzip`` (what analytics-python and rudder-sdk-python send)
before ``decode``.

Each message becomes one ``kind="event"`` record:
- ``body``: the message as sent, with the batch's ``context`` and ``integrations`` merged under its
  own (the message's keys win) and the batch's ``sentAt`` when it has none; ``writeKey`` is removed
  from the message and the batch, so the key is never stored.
- ``event_type``: ``track:<event>`` for a track (the event name is what a track means; the prefix
  keeps an event called "identify" apart from an identify call), else the type itself
  (``identify``, ``page``, ``screen``, ``group``, ``alias``).
- ``client_id``: ``messageId``, so a batch sent again maps to the same event ids.
- ``timestamp``: the message's ``timestamp`` (ISO 8601), else None (the service stamps it).

Refused alone (``ItemError``, the rest of the batch is stored): a message that is not an object, has
no known ``type``, a track without an ``event`` name, no ``userId`` nor ``anonymousId``, a
``messageId`` that is not a string or number, or more than ``MAX_MESSAGE_BYTES`` as sent (before the batch's context is merged).
Refused whole (``ProtocolError``): a body over ``MAX_BATCH_BYTES``, not JSON, not an object, or a
batch that is not a list. These are Segment's documented limits (32 KB per message, 500 KB per batch).

The answers the SDKs read (``segment/analytics/request.py``, ``rudderstack/analytics/request.py``):
rudder-sdk-python accepts only status 200; both parse an error body for ``code`` and ``message``
(rudder-sdk-python fails with ``KeyError`` on a body without them and resends) and give up on a 4xx
other than 429 (analytics-python also retries 408, 410 and 460), retrying 429 and 5xx.
"""

from __future__ import annotations

from typing import Any

import orjson

from ingest.problems import ItemError
from ingest.protocols.records import Decoded, DecodedRecord, ProtocolError
from ingest.protocols.timestamps import from_iso8601

MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
TYPES = frozenset({"track", "identify", "page", "screen", "group", "alias"})
SUCCESS_BODY = b'{"success":true}'
CONTENT_TYPE = "application/json"
MAX_MESSAGE_ID_CHARS = 256


def decode(body: bytes, path_type: str | None = None) -> Decoded:
    """The messages of one request. ``path_type``: the type the route names (``/v1/track``:
    ``"track"``), None for ``/v1/batch``."""
    return decode_with_key(body, path_type)[0]


def decode_with_key(body: bytes, path_type: str | None = None) -> tuple[Decoded, str | None]:
    """``decode``, and the ``writeKey`` the body carries at its top level (None without one), read
    from the same parse so that the route can authenticate a key sent in the body alone."""
    if len(body) > MAX_BATCH_BYTES:
        raise ProtocolError(413, "body-too-large", f"a batch is limited to {MAX_BATCH_BYTES} bytes")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ProtocolError(400, "invalid-json", "the body is not JSON") from None
    if not isinstance(document, dict):
        raise ProtocolError(400, "invalid-json", "the body must be a JSON object")
    key = document.get("writeKey")
    if path_type is None:
        messages = document.get("batch")
        if not isinstance(messages, list):
            raise ProtocolError(400, "invalid-batch", "a batch needs a 'batch' array of messages")
        shared = {
            name: document[name]
            for name in ("context", "integrations")
            if isinstance(document.get(name), dict)
        }
        sent_at = document.get("sentAt")
    else:
        messages, shared, sent_at = [document], {}, None
    records: list[DecodedRecord] = []
    errors: list[ItemError] = []
    for index, message in enumerate(messages):
        try:
            records.append(_record(message, shared, sent_at, path_type))
        except _Refused as refused:
            errors.append(ItemError(index, refused.code, refused.message))
    return Decoded(records, errors), key if isinstance(key, str) and key else None


def encode_success() -> tuple[int, bytes, str]:
    """Segment's answer to an accepted request: 200 ``{"success": true}``."""
    return 200, SUCCESS_BODY, CONTENT_TYPE


def encode_error(code: str, message: str) -> tuple[bytes, str]:
    """An error body with the ``code`` and ``message`` both SDKs read."""
    return orjson.dumps({"success": False, "code": code, "message": message}), CONTENT_TYPE


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _record(message: Any, shared: dict[str, Any], sent_at: Any, path_type: str | None) -> DecodedRecord:
    if not isinstance(message, dict):
        raise _Refused("not-an-object", "a message must be a JSON object")
    kind = message.get("type", path_type)
    if path_type is not None and kind != path_type:
        raise _Refused("invalid-type", f"a message posted to /v1/{path_type} must have type {path_type!r}")
    if not isinstance(kind, str) or kind not in TYPES:
        raise _Refused("invalid-type", f"'type' must be one of {', '.join(sorted(TYPES))}")
    event_type: str = kind
    if kind == "track":
        name = message.get("event")
        if not isinstance(name, str) or not name:
            raise _Refused("missing-event", "a track message needs an 'event' name")
        event_type = f"track:{name}"
    if not _present(message.get("userId")) and not _present(message.get("anonymousId")):
        raise _Refused("missing-identity", "a message needs a 'userId' or an 'anonymousId'")
    message_id = message.get("messageId")
    if message_id is not None:
        if isinstance(message_id, bool) or not isinstance(message_id, str | int | float):
            raise _Refused("invalid-message-id", "'messageId' must be a string")
        message_id = str(message_id)
        if not message_id or len(message_id) > MAX_MESSAGE_ID_CHARS:
            raise _Refused(
                "invalid-message-id", f"'messageId' must have 1 to {MAX_MESSAGE_ID_CHARS} characters"
            )
    if len(orjson.dumps(message)) > MAX_MESSAGE_BYTES:
        raise _Refused("record-too-large", f"a message is limited to {MAX_MESSAGE_BYTES} bytes")
    body = {name: value for name, value in message.items() if name != "writeKey"}
    body["type"] = kind
    for name, value in shared.items():
        own = body.get(name)
        body[name] = {**value, **own} if isinstance(own, dict) else own if name in body else value
    if sent_at is not None and "sentAt" not in body:
        body["sentAt"] = sent_at
    return DecodedRecord(
        kind="event",
        body=body,
        client_id=message_id,
        event_type=event_type,
        timestamp=from_iso8601(message.get("timestamp")),
    )


def _present(value: Any) -> bool:
    return value is not None and value != ""
