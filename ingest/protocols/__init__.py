"""Protocol adapters: how records arrive over one wire protocol, and how the answer goes back.

The contract, for every protocol (one module each, ``ingest/protocols/<name>.py``):

- ``decode(request) -> records + per-record errors``: pure. It turns the body of a request (already
  base64-undone, size-checked, signature-checked where the route has one, and decompressed) into the
  plain items the service normalizes, plus an ``ItemError`` for each item it could not read. It never
  raises for bad input except with a ``Problem`` for a body that is unreadable as a whole.
- ``encode(receipt | problem) -> the protocol's response``: pure. It turns the service's outcome into the
  status, content type, headers and body that the protocol's clients expect (and retry on).

The service, the limits, the tenant rules and durability never know which protocol a record came by,
beyond the ``source`` the envelope records (``source.route`` and ``source.protocol``). A decoder that needs a heavy library (protobuf, snappy) imports it inside ``decode``,
so only its own route pays for the import at cold start.

``native`` is sluice's own JSON/NDJSON/text protocol (``POST /events``, ``POST /ingest``,
``POST /webhooks/{source}``); ``otlp``, ``loki`` and ``form`` are what log shippers send (OTLP/HTTP logs,
the Loki push API, stdlib ``logging.handlers.HTTPHandler``); ``segment`` and ``posthog`` what analytics
SDKs send (the Segment HTTP Tracking API, PostHog capture, with ``lzstring`` for posthog-js's lz64):
each decodes into ``records.Decoded`` or raises ``records.ProtocolError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Reply:
    """A protocol's response, independent of how it is sent (API Gateway, the local server)."""

    status: int
    content_type: str | None  # None: no Content-Type and no body (Loki's 204)
    body: str | bytes  # bytes (protobuf) reach API Gateway base64-encoded
    headers: dict[str, str] = field(default_factory=dict)
