"""What a protocol adapter hands the ingest service: records decoded from one request, and per-item errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ingest.problems import ItemError


@dataclass(frozen=True)
class DecodedRecord:
    """One record a protocol adapter decoded, before the service builds its envelope."""

    kind: str  # "event" | "log"
    body: dict[str, Any]  # an event's payload object; a log's fields: "text", optional "level", "attributes"
    client_id: str | None = None  # the sender's own id of the record, for de-duplication
    event_type: str | None = None
    timestamp: str | None = None  # RFC 3339 UTC, when the protocol carries the record's own time
    # The record's times in Unix nanoseconds exactly as sent (OTLP: time and observed time; Loki: the
    # entry's): part of the identity of a record without an id, where ``timestamp`` is too coarse.
    # Left out of equality: two decodings of one record are equal by what the envelope keeps.
    nanos: tuple[int, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Decoded:
    """Everything decoded from one request: records in order, and the items refused (by batch index)."""

    records: list[DecodedRecord] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)


class ProtocolError(Exception):
    """A request that cannot be decoded at all: the whole request is refused with ``status``.

    ``status`` is 400 (malformed), 413 (too large once decompressed) or 415 (media type or content
    encoding the protocol does not define); ``code`` is a stable machine-readable reason in the
    vocabulary of ``ingest.problems`` (``invalid-protobuf``, ``invalid-json``, ``invalid-snappy``,
    ``unsupported-media-type`` ...); ``message`` is for the client, in English.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"ProtocolError({self.status}, {self.code!r}, {self.message!r})"
