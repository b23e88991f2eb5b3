"""``application/x-www-form-urlencoded`` logs, as Python's ``logging.handlers.HTTPHandler`` posts them.

``HTTPHandler.emit`` sends ``urllib.parse.urlencode(record.__dict__)``: every LogRecord attribute as
``str(value)``, one record per request, and never reads the response. So ``msg`` arrives unformatted,
``args`` as the ``repr`` of a tuple (or dict), and ``message`` only when another handler formatted the
record first. One request gives one ``kind="log"`` record (batch index 0):
- ``text``: ``message`` when present; else ``msg % args`` when ``args`` is the repr of literals
  (``ast.literal_eval``, bounded) and ``msg`` holds only plain %-conversions of sane width; else
  ``msg``. Without ``msg`` or ``message`` the record is refused (``missing-text``).
- ``level``: ``levelname``. ``timestamp``: ``created`` (float seconds).
- ``attributes``: ``name``, ``pathname``, ``filename``, ``module``, ``funcName``, ``lineno``,
  ``process``, ``processName``, ``thread``, ``threadName``, ``taskName``, ``levelno``, ``exc_text`` and
  ``stack_info`` (numbers as integers; a value of ``"None"``, ``str(None)``, is left out), ``msg`` when
  it differs from the text (the message template, useful for grouping), and every other field (what
  the caller passed as ``extra=``) as its text, unless it is a default object repr (``<... at 0x...>``).
- Dropped: ``args`` and ``exc_info`` (reprs of Python objects), ``msecs``, ``relativeCreated`` and
  ``asctime`` (other forms of ``created``), and ``message``/``levelname``/``created`` themselves (they
  became text, level and timestamp).
"""

from __future__ import annotations

import ast
import re
import urllib.parse
from typing import Any

from ingest.problems import ItemError
from ingest.protocols.records import Decoded, DecodedRecord, ProtocolError
from ingest.protocols.timestamps import from_unix_seconds

FORM = "application/x-www-form-urlencoded"
_MAX_FIELDS = 1000
# literal_eval parses Python source: bound what it is given, and the widths a format may ask for.
_MAX_ARGS_CHARS = 10_000
_MAX_WIDTH = 1000
_CONVERSION = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.?)", re.DOTALL)
_CONVERSION_TYPES = frozenset("diouxXeEfFgGcrsa%")
_OBJECT_REPR = re.compile(r"<.* at 0x[0-9A-Fa-f]+>", re.DOTALL)
_INTEGER_FIELDS = ("lineno", "process", "thread", "levelno")
_TEXT_FIELDS = (
    "name",
    "pathname",
    "filename",
    "module",
    "funcName",
    "processName",
    "threadName",
    "taskName",
    "exc_text",
    "stack_info",
)
_DROPPED = frozenset(
    {"msg", "args", "exc_info", "msecs", "relativeCreated", "asctime", "message", "levelname", "created"}
    | set(_INTEGER_FIELDS)
    | set(_TEXT_FIELDS)
)


def decode(body: bytes, content_type: str | None) -> Decoded:
    """The one log record of an ``HTTPHandler`` POST; ``ProtocolError`` when the body is not a form."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind != FORM:
        raise ProtocolError(415, "unsupported-media-type", f"Content-Type {kind!r} is not {FORM}")
    try:
        text = body.decode("ascii")  # urlencode's output; anything else is not a form
        pairs = urllib.parse.parse_qsl(
            text, keep_blank_values=True, encoding="utf-8", errors="replace", max_num_fields=_MAX_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError(
            400, "invalid-form", "the body is not a urlencoded form (or has too many fields)"
        ) from None
    fields = dict(pairs)
    if not fields:
        raise ProtocolError(400, "empty-body", "the form has no fields")
    message = _text(fields)
    if message is None:
        return Decoded(
            errors=[ItemError(0, "missing-text", "a logging form needs a 'msg' or 'message' field")]
        )
    body_fields: dict[str, Any] = {"text": message}
    if fields.get("levelname"):
        body_fields["level"] = fields["levelname"]
    attributes = _attributes(fields, message)
    if attributes:
        body_fields["attributes"] = attributes
    return Decoded(
        records=[DecodedRecord(kind="log", body=body_fields, timestamp=_created(fields.get("created")))]
    )


def _text(fields: dict[str, str]) -> str | None:
    if fields.get("message"):
        return fields["message"]
    msg = fields.get("msg")
    if msg is None:
        return None
    formatted = _format(msg, fields.get("args", ""))
    return msg if formatted is None else formatted


def _format(msg: str, args_repr: str) -> str | None:
    """``msg % args`` as ``LogRecord.getMessage`` would give it, when that is safe to do here; else None."""
    if "%" not in msg or args_repr in ("", "()", "None") or len(args_repr) > _MAX_ARGS_CHARS:
        return None
    for conversion in _CONVERSION.finditer(msg):
        width, precision, kind = conversion.groups()
        if kind not in _CONVERSION_TYPES or "*" in (width, precision):
            return None
        if int(width or 0) > _MAX_WIDTH or int(precision or 0) > _MAX_WIDTH:
            return None
    try:
        args = ast.literal_eval(args_repr)
        if not isinstance(args, tuple | dict):
            return None
        return msg % args
    except (ValueError, TypeError, SyntaxError, KeyError, OverflowError, MemoryError, RecursionError):
        return None


def _created(value: str | None) -> str | None:
    try:
        return from_unix_seconds(float(value)) if value else None
    except ValueError:
        return None


def _attributes(fields: dict[str, str], text: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        value = fields.get(name)
        if value and value != "None":
            attributes[name] = value
    for name in _INTEGER_FIELDS:
        value = fields.get(name)
        if value and value != "None":
            attributes[name] = int(value) if _is_integer(value) else value
    if fields.get("msg") not in (None, text):
        attributes["msg"] = fields["msg"]
    for name, value in fields.items():
        if name not in _DROPPED and not _OBJECT_REPR.fullmatch(value):
            attributes[name] = value
    return attributes


def _is_integer(value: str) -> bool:
    return value.isascii() and value.lstrip("-").isdigit() and len(value) <= 20 and value.count("-") <= 1
