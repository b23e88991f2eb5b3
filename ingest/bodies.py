"""Turning a raw HTTP body into items: base64, size caps, gzip with a decompression cap, media types.

Pure functions over bytes; every malformed input ends in a ``Problem`` (the whole request is refused)
or an ``ItemError`` (one item is refused, the others go on). Nothing here raises anything else.
"""

from __future__ import annotations

import binascii
import codecs
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from core.settings import IngestSettings
from ingest.problems import ItemError, Problem

JSON_TYPES = frozenset({"application/json", "text/json"})
NDJSON_TYPES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"}
)
TEXT_TYPES = frozenset({"text/plain"})


@dataclass(frozen=True)
class Limits:
    """Request limits (docs/architecture.md §3); every one is configurable through IngestSettings."""

    max_body_bytes: int
    max_decompressed_bytes: int
    max_records: int
    max_record_bytes: int
    max_depth: int

    @classmethod
    def from_settings(cls, s: IngestSettings) -> Limits:
        return cls(s.max_body_bytes, s.max_decompressed_bytes, s.max_records, s.max_record_bytes, s.max_depth)


@dataclass
class ParsedBody:
    """The items of a request in order, with their original indexes, and the items refused while parsing."""

    items: list[tuple[int, Any]] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.items) + len(self.errors)


def decode_body(body: str | None, is_base64: bool, limits: Limits) -> bytes:
    """The body bytes as the client sent them (API Gateway may base64-encode them)."""
    if not body:
        return b""
    if is_base64:
        # Cheap bound before decoding: base64 is 4/3 the size of what it encodes.
        if len(body) > (limits.max_body_bytes * 4) // 3 + 4:
            raise Problem(413, "body-too-large", f"request body exceeds {limits.max_body_bytes} bytes")
        try:
            raw = binascii.a2b_base64(body, strict_mode=True)
        except (binascii.Error, ValueError):
            raise Problem(400, "invalid-base64", "the body is marked base64-encoded but is not") from None
    else:
        raw = body.encode("utf-8", "surrogatepass")
    if len(raw) > limits.max_body_bytes:
        raise Problem(413, "body-too-large", f"request body exceeds {limits.max_body_bytes} bytes")
    return raw


def decompress(
    raw: bytes, content_encoding: str | None, limits: Limits, keep: frozenset[str] = frozenset()
) -> bytes:
    """Undo ``Content-Encoding`` (gzip or identity), never producing more than the decompressed cap.

    The cap is enforced while inflating (``max_length``), so a decompression bomb costs at most the
    cap in memory and is answered 413 instead of exhausting the function. Codings in ``keep`` are left
    for the caller to undo (a protocol adapter's own compression, such as Loki's snappy).
    """
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    data = raw
    for coding in reversed(codings):  # the last coding listed was applied last
        if coding == "identity" or coding in keep:
            continue
        if coding not in ("gzip", "x-gzip"):
            raise Problem(
                415, "unsupported-encoding", f"Content-Encoding {coding!r} is not supported; use gzip"
            )
        data = _gunzip_capped(data, limits.max_decompressed_bytes)
    if len(data) > limits.max_decompressed_bytes:
        raise Problem(413, "decompressed-too-large", f"body exceeds {limits.max_decompressed_bytes} bytes")
    return data


def _gunzip_capped(data: bytes, cap: int) -> bytes:
    out: list[bytes] = []
    produced = 0
    rest = data
    try:
        while rest:  # gzip allows several members back to back; each gets its own decompressor
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            chunk_in = rest
            while chunk_in:
                piece = inflater.decompress(chunk_in, cap + 1 - produced)
                produced += len(piece)
                if produced > cap:
                    raise Problem(413, "decompressed-too-large", f"decompressed body exceeds {cap} bytes")
                out.append(piece)
                if inflater.eof:
                    break
                chunk_in = inflater.unconsumed_tail
            if not inflater.eof:
                tail = inflater.flush()
                produced += len(tail)
                if produced > cap:
                    raise Problem(413, "decompressed-too-large", f"decompressed body exceeds {cap} bytes")
                raise Problem(400, "invalid-gzip", "the gzip stream is truncated")
            rest = inflater.unused_data.lstrip(b"\x00")  # some writers pad members with zeros
    except zlib.error as exc:
        raise Problem(400, "invalid-gzip", f"the body is not valid gzip: {exc}") from None
    return b"".join(out)


def parse_media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    """``("application/json", {"charset": "utf-8"})`` from a Content-Type header value."""
    if not content_type:
        return "", {}
    mime, _, rest = content_type.partition(";")
    params: dict[str, str] = {}
    for part in rest.split(";"):
        key, eq, value = part.partition("=")
        if eq:
            params[key.strip().lower()] = value.strip().strip('"')
    return mime.strip().lower(), params


def _is_json(mime: str) -> bool:
    return mime in JSON_TYPES or (mime.startswith("application/") and mime.endswith("+json"))


def _require_utf8(params: dict[str, str]) -> None:
    charset = params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise Problem(415, "unsupported-media-type", f"JSON must be UTF-8, got charset {charset!r}")


def _json_error(exc: orjson.JSONDecodeError) -> Problem:
    message = str(exc)
    if "UTF-8" in message or "surrogate" in message:
        return Problem(400, "invalid-utf8", "the body is not valid UTF-8")
    return Problem(400, "invalid-json", f"the body is not valid JSON: {message}")


def check_record_count(n: int, limits: Limits) -> None:
    """413 ``too-many-records`` when a request holds more records than the limit."""
    if n > limits.max_records:
        raise Problem(
            413, "too-many-records", f"{n} records in one request; the limit is {limits.max_records}"
        )


def parse_json_documents(data: bytes, mime: str, params: dict[str, str], limits: Limits) -> ParsedBody:
    """Items of a JSON (object or array) or NDJSON body, each a parsed JSON value."""
    _require_utf8(params)
    parsed = ParsedBody()
    if _is_json(mime):
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise _json_error(exc) from None
        if isinstance(doc, list):
            check_record_count(len(doc), limits)
            parsed.items = list(enumerate(doc))
        else:
            parsed.items = [(0, doc)]
    else:  # NDJSON: one document per non-empty line; a bad line refuses that item only
        lines = [line for line in data.split(b"\n") if line.strip()]
        check_record_count(len(lines), limits)
        for index, line in enumerate(lines):
            try:
                parsed.items.append((index, orjson.loads(line)))
            except orjson.JSONDecodeError as exc:
                problem = _json_error(exc)
                parsed.errors.append(ItemError(index, problem.code, problem.detail))
    # Nesting (limits.max_depth) is checked per record by ingest.normalize, on the text it serializes
    # anyway: counting brackets there is cheaper than serializing each item once more here.
    return parsed


# Python codecs that do turn bytes into text but are no character set: host-name and escape-sequence
# transforms, the identity map, and the codec that refuses everything.
_NOT_CHARSETS = frozenset(
    {"idna", "punycode", "unicode-escape", "raw-unicode-escape", "charmap", "undefined"}
)


def text_codec(charset: str) -> str:
    """The Python codec for a declared text charset; 415 unless it names a real character set.

    ``bytes.decode`` takes any codec name, and Python's codecs include bytes-to-bytes and text-to-text
    transforms (base64, zlib, rot13) and escape-sequence interpreters that are no text encoding.
    """
    try:
        name = codecs.lookup(charset).name
        if name not in _NOT_CHARSETS:
            # LookupError for the codecs Python itself marks as no text encoding (empty input skips the check)
            b"\n".decode(name, errors="replace")
    except (LookupError, ValueError):  # ValueError: a NUL inside the name
        name = ""
    if not name or name in _NOT_CHARSETS:
        raise Problem(415, "unsupported-media-type", f"charset {charset!r} is not a supported text encoding")
    return name


def parse_text_lines(data: bytes, params: dict[str, str], limits: Limits) -> ParsedBody:
    """Items of a text/plain body: one per non-blank line, the line as sent (without its line ending).

    Log shippers send what the logged program wrote, odd bytes included, so undecodable bytes become
    U+FFFD instead of refusing the whole batch. A declared charset (e.g. latin-1) is honoured.
    """
    text = data.decode(text_codec(params.get("charset", "utf-8")), errors="replace")
    # Split on \n only: str.splitlines() would also break on \x0b, \x1c, U+2028 ... inside a log line.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    items = [line for line in lines if line.strip()]
    check_record_count(len(items), limits)
    return ParsedBody(items=list(enumerate(items)))


def parse_body(data: bytes, content_type: str | None, kind: str, limits: Limits) -> ParsedBody:
    """Dispatch on media type and route: events take JSON and NDJSON; logs also take text/plain."""
    if not data.strip():
        raise Problem(400, "empty-body", "the request body is empty")
    mime, params = parse_media_type(content_type)
    if _is_json(mime) or mime in NDJSON_TYPES:
        return parse_json_documents(data, mime, params, limits)
    if kind == "log" and mime in TEXT_TYPES:
        return parse_text_lines(data, params, limits)
    accepted = "application/json, application/x-ndjson" + (", text/plain" if kind == "log" else "")
    shown = mime or "none"
    raise Problem(
        415, "unsupported-media-type", f"Content-Type {shown!r} is not accepted here; use {accepted}"
    )
