"""Items -> envelopes: tenant, ids, type, client hints and source metadata (docs/architecture.md §4).

Pure: the request's facts come in as a ``RequestFacts`` value, so every rule here is tested without
API Gateway or AWS.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from core import envelope as env
from core.ids import derive_event_id, derive_webhook_event_id, new_event_id, new_event_ids
from core.tenancy import is_valid_tenant_id
from ingest.problems import ItemError, Problem
from ingest.protocols.records import DecodedRecord

if TYPE_CHECKING:
    from core.redaction import Counts, Redactor

MAX_TYPE_LENGTH = 256
MAX_CLIENT_ID_LENGTH = 512
_TIMESTAMP_FIELDS = ("timestamp", "time", "ts", "@timestamp", "created_at")
_TEXT_FIELDS = ("text", "message", "msg")
_LOG_RESERVED = frozenset(
    {"text", "message", "msg", "level", "severity", "log_id", "tenant_id", "attributes"}
)
# A log line's level, when it says one: "[error]", " INFO ", "WARN:" ... (first match, 200 chars).
# The words are ASCII and matched without regard to ASCII case on the upper-cased UTF-8 bytes, which
# is about 3x faster than re.IGNORECASE on the str; the "no letter before" test is done in Python,
# since a lookbehind at the start of the pattern stops the regex engine from skipping ahead.
_LEVEL_RE = re.compile(
    rb"(?:TRACE|DEBUG|INFO|NOTICE|WARN(?:ING)?|ERROR|ERR|CRIT(?:ICAL)?|FATAL|ALERT|EMERG(?:ENCY)?|SEVERE)(?![A-Za-z])"
)
_LEVEL_ALIASES = {
    "WARNING": "WARN",
    "ERR": "ERROR",
    "CRIT": "CRITICAL",
    "EMERGENCY": "EMERG",
    "SEVERE": "ERROR",
}


@dataclass(frozen=True)
class RequestFacts:
    """What the request says about its records, gathered once per request."""

    route: str  # "POST /events" | "POST /ingest" | "POST /webhooks/{source}"
    kind: str  # "event" | "log"
    received_at: str
    default_tenant: str
    tenant_id: str | None = None  # fixed by the credential, the webhook source or X-Tenant-Id
    tenant_from_credential: bool = False
    idempotency_key: str | None = None
    delivery_id: str | None = None
    event_type: str | None = None  # from X-GitHub-Event / X-Event-Type; for a webhook, claimed (unsigned)
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    webhook: str | None = None
    id_field: str | None = None  # a body field that is the sender's delivery id (Stripe's "id": "evt_...")
    protocol: str = "sluice"  # the wire protocol the records came by: "sluice", "otlp", "loki", "form"
    content_identity: bool = False  # records without an id of their own are named by their content
    webhook_identity: str | None = None  # a verified delivery's signed identity (ingest.webhooks.Verified)


class ItemRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def depth_exceeds(value: Any, max_depth: int) -> bool:
    """True when objects/arrays nest deeper than ``max_depth`` (the value itself is level 1)."""
    if max_depth < 1:
        return True
    if not isinstance(value, dict | list):
        return False
    if max_depth <= _RECURSIVE_MAX_DEPTH:
        return _nests_deeper(value, max_depth - 1)
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
    return False


# Below this limit a plain recursive walk is used: about 4x faster than the explicit stack (it makes
# no tuples or generators), and its recursion stays far inside Python's own limit.
_RECURSIVE_MAX_DEPTH = 200
_CONTAINERS = (dict, list)  # a tuple: isinstance checks it faster than the ``dict | list`` union


def _nests_deeper(node: dict[str, Any] | list[Any], room: int) -> bool:
    """True when containers nest more than ``room`` levels below ``node``."""
    for child in node.values() if isinstance(node, dict) else node:
        if isinstance(child, _CONTAINERS) and (room == 0 or _nests_deeper(child, room - 1)):
            return True
    return False


def detect_level(line: str) -> str | None:
    """The severity a log line names, normalized (``WARNING`` -> ``WARN``), or None."""
    head = line[:200].encode("utf-8", "surrogatepass").upper()  # bytes.upper touches ASCII only
    for match in _LEVEL_RE.finditer(head):
        start = match.start()
        if start == 0 or not (65 <= head[start - 1] <= 90):  # no ASCII letter (upper-cased) before
            level = match.group().decode()
            return _LEVEL_ALIASES.get(level, level)
    return None


def _client_id(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _timestamp(obj: dict[str, Any]) -> str | None:
    for name in _TIMESTAMP_FIELDS:
        value = obj.get(name)
        if isinstance(value, str) and value:
            return value[:64]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    return None


def _tenant_for(obj: dict[str, Any] | None, facts: RequestFacts) -> str:
    claimed = obj.get("tenant_id") if obj is not None else None
    if facts.tenant_id is not None:
        if claimed is not None and claimed != facts.tenant_id:
            # A body naming another tenant than the one the request may write: refuse the whole request.
            # The answer names no tenant, the credential's own included: problem bodies end up in client
            # logs, proxies and error trackers that the tenant id should not reach.
            raise Problem(
                403, "tenant-forbidden", "an item names a tenant_id other than the request's tenant"
            )
        return facts.tenant_id
    if claimed is None:
        return facts.default_tenant
    if not is_valid_tenant_id(claimed):
        raise ItemRejected("invalid-tenant", "tenant_id must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    return str(claimed)


def _event_type(obj: dict[str, Any], facts: RequestFacts) -> str | None:
    if facts.event_type:
        action = obj.get("action")
        # GitHub sends the action in the body: "issues" + "opened" -> "issues.opened".
        kind = f"{facts.event_type}.{action}" if isinstance(action, str) and action else facts.event_type
        return kind[:MAX_TYPE_LENGTH]
    for name in ("type", "event_type", "event"):
        value = obj.get(name)
        if isinstance(value, str) and value:
            return value[:MAX_TYPE_LENGTH]
    return None


def _own_id(item: dict[str, Any], facts: RequestFacts) -> str | None:
    """An event's own id: its ``event_id``; for a verified webhook only the scheme's signed id field."""
    if facts.webhook is not None:
        return _client_id(item.get(facts.id_field)) if facts.id_field else None
    own_id = _client_id(item.get("event_id"))
    if own_id is None and facts.id_field:
        own_id = _client_id(item.get(facts.id_field))
    return own_id


def _identity(own_id: str | None, index: int, facts: RequestFacts) -> str | None:
    """The client-supplied identity of an item: its own id, else the request's key plus its position.

    A verified webhook delivery is named only by signed material: its signed identity plus the position.
    """
    if own_id is not None:
        return own_id
    if facts.webhook is not None:
        return f"{facts.webhook_identity}#{index}" if facts.webhook_identity else None
    if facts.idempotency_key:
        return f"{facts.idempotency_key}#{index}"
    if facts.delivery_id:
        return f"{facts.delivery_id}#{index}"
    return None


def _source(facts: RequestFacts) -> dict[str, Any]:
    source: dict[str, Any] = {
        "route": facts.route,
        "protocol": facts.protocol,
        "ip": facts.ip,
        "user_agent": facts.user_agent,
        "request_id": facts.request_id,
    }
    if facts.delivery_id:
        source["delivery_id"] = facts.delivery_id
    if facts.webhook:
        source["webhook"] = facts.webhook
        # The type of a verified delivery is signed when it comes from the body; a header's is claimed.
        source["type_verified"] = facts.event_type is None
    return source


def _derived_id(tenant: str, identity: str, facts: RequestFacts) -> str:
    """The id for a client identity; a webhook delivery's lives in the webhook namespace, under its source."""
    if facts.webhook is not None:
        return derive_webhook_event_id(tenant, facts.webhook, identity)
    return derive_event_id(tenant, facts.kind, identity)


def build_envelope(
    item: Any,
    index: int,
    facts: RequestFacts,
    source: dict[str, Any],
    next_id: Callable[[], str] = new_event_id,
) -> env.Envelope:
    """One envelope from one parsed item; ``ItemRejected`` for an item that cannot be a record.

    ``next_id`` gives the server-assigned id when the item has no identity of its own.
    """
    if facts.kind == "event":
        if not isinstance(item, dict):
            raise ItemRejected("not-an-object", f"an event must be a JSON object, got {type(item).__name__}")
        tenant = _tenant_for(item, facts)
        own_id = _own_id(item, facts)
        body_fields: dict[str, Any] = {"payload": item}
        event_type = _event_type(item, facts)
    else:
        if isinstance(item, str):
            obj: dict[str, Any] | None = None
            text, level, attributes = item, detect_level(item), None
        elif isinstance(item, dict):
            obj = item
            text_value = next((item[f] for f in _TEXT_FIELDS if isinstance(item.get(f), str)), None)
            if text_value is None:
                raise ItemRejected("missing-text", "a log object needs a string field 'text' or 'message'")
            text = text_value
            raw_level = item.get("level", item.get("severity"))
            level = str(raw_level)[:32] if isinstance(raw_level, str | int) else detect_level(text)
            given = item.get("attributes")
            attributes = dict(given) if isinstance(given, dict) else {}
            attributes.update((k, v) for k, v in item.items() if k not in _LOG_RESERVED)
        else:
            raise ItemRejected(
                "not-a-log", "a log must be a text line, or an object with 'text' or 'message'"
            )
        tenant = _tenant_for(obj, facts)
        own_id = _client_id(obj.get("log_id")) if obj is not None else None
        body_fields = _log_fields(text, level, attributes)
        event_type = obj.get("type") if obj is not None and isinstance(obj.get("type"), str) else None
    stamp = _timestamp(item) if isinstance(item, dict) else None
    return _assemble(tenant, own_id, index, facts, source, next_id, event_type, stamp, body_fields)


def build_decoded_envelope(
    record: DecodedRecord,
    index: int,
    facts: RequestFacts,
    source: dict[str, Any],
    next_id: Callable[[], str] = new_event_id,
) -> env.Envelope:
    """One envelope from one record a protocol adapter decoded (``ingest.protocols.records``).

    The same rules as ``build_envelope``: the request's tenant, the client's identity (the record's
    own id, else ``content_identity`` when the facts ask for it, else the Idempotency-Key and its
    position), a log's level detected in its text when the protocol gave none.
    """
    if record.kind != facts.kind:
        raise ItemRejected("wrong-kind", f"a {record.kind} record on a route that takes {facts.kind}s")
    tenant = _tenant_for(None, facts)
    if record.kind == "event":
        body_fields: dict[str, Any] = {"payload": record.body}
    else:
        text = record.body.get("text")
        if not isinstance(text, str):
            raise ItemRejected("missing-text", "a log record needs a text")
        level = record.body.get("level")
        if not isinstance(level, str) or not level:
            level = detect_level(text)
        given = record.body.get("attributes")
        body_fields = _log_fields(text, level, given if isinstance(given, dict) else None)
    own_id = record.client_id
    if own_id is None and facts.content_identity:
        own_id = content_identity(facts.protocol, record)
    event_type = record.event_type[:MAX_TYPE_LENGTH] if record.event_type else None
    return _assemble(tenant, own_id, index, facts, source, next_id, event_type, record.timestamp, body_fields)


def content_identity(protocol: str, record: DecodedRecord) -> str:
    """A record's identity derived from everything it carries, for protocols that give records no id.

    A client retrying a request (after a 503, or a lost answer) resends the same records: they get the
    same identity, hence the same event ids, and storage overwrites instead of duplicating. Two records
    identical in every field (text, level, times to the nanosecond as sent, type, attributes: for OTLP
    the resource, scope, trace and span ids; for Loki the stream labels and structured metadata) are
    one record, as Loki itself keeps one of identical entries of a stream.
    """
    canonical = orjson.dumps(
        [record.kind, record.nanos, record.timestamp, record.event_type, record.body],
        option=orjson.OPT_SORT_KEYS,
    )
    return f"{protocol}:{hashlib.sha256(canonical).hexdigest()}"


def _log_fields(text: str, level: str | None, attributes: dict[str, Any] | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"text": text}
    if level:
        fields["level"] = level
    if attributes:
        fields["attributes"] = attributes
    return fields


def _assemble(
    tenant: str,
    own_id: str | None,
    index: int,
    facts: RequestFacts,
    source: dict[str, Any],
    next_id: Callable[[], str],
    event_type: str | None,
    stamp: str | None,
    body_fields: dict[str, Any],
) -> env.Envelope:
    """The envelope every route builds: ids, time, type, client hints, source, then the body."""
    kind = facts.kind
    record: env.Envelope = {"v": env.VERSION, "kind": kind, "tenant_id": tenant, "event_id": ""}
    client: dict[str, str] = {}
    identity = _identity(own_id, index, facts)
    if identity is not None:
        # The whole id is hashed (ids sharing a prefix are different records); only the copy kept in
        # the record is cut, so ids up to the cut derive as they always have.
        record["event_id"] = _derived_id(tenant, identity, facts)
        client["event_id"] = identity if own_id is None else own_id[:MAX_CLIENT_ID_LENGTH]
    else:
        record["event_id"] = next_id()
    if stamp:
        client["timestamp"] = stamp
    record["received_at"] = facts.received_at
    record["type"] = event_type
    if client:
        record["client"] = client
    record["source"] = source
    record.update(body_fields)
    return record


Builder = Callable[[Any, int, RequestFacts, dict[str, Any], Callable[[], str]], env.Envelope]


@dataclass
class Normalized:
    """Envelopes ready to publish (index, envelope, serialized text, its UTF-8 size), refused items, and
    the replacements made per redaction rule when the records were redacted."""

    accepted: list[tuple[int, env.Envelope, str, int]]
    errors: list[ItemError]
    redactions: dict[str, int] = field(default_factory=dict)


def redact_record(
    record: env.Envelope, text: str, redactor: Redactor, counts: Counts
) -> tuple[env.Envelope, str]:
    """The record with the redaction rules applied, and its serialized text; adds to ``counts``.

    ``text`` is the record's serialization: the redactor's gate runs on it once, and when no rule
    replaced anything the record and its text are returned as they are (no second serialization).
    """
    redacted, found = env.redact_envelope(record, redactor, text)
    if not found:
        return record, text
    for rule, n in found.items():
        counts[rule] = counts.get(rule, 0) + n
    return redacted, env.dumps(redacted)


class _IdPool:
    """Server-assigned ids for one request's items, made in one batch when the first item needs one."""

    __slots__ = ("_ids", "_size")

    def __init__(self, size: int) -> None:
        self._ids: list[str] = []
        self._size = size

    def take(self) -> str:
        if not self._ids:
            self._ids = new_event_ids(self._size)[::-1]  # popped from the end: in increasing order
            self._size = 1  # never exhausted with one id an item; if it were, go on one at a time
        return self._ids.pop()


def normalize(
    items: Sequence[tuple[int, Any]],
    facts: RequestFacts,
    max_record_bytes: int,
    max_depth: int,
    *,
    build: Builder = build_envelope,
    redactor: Redactor | None = None,
) -> Normalized:
    """Envelopes for every acceptable item, in request order; refused items become ``ItemError``s.

    Each record is serialized once, and its size and nesting are checked on that text: the nesting
    of an item can be no deeper than the number of brackets in its record, so counting them in C
    clears nearly every record without walking it. ``build`` is ``build_envelope`` for parsed items and
    ``build_decoded_envelope`` for the records of a protocol adapter: one loop, one set of limits.

    With a ``redactor`` each record is redacted before its size is checked: what is published is the
    redacted text, so the limit (which exists for what the queue and the stream hold) applies to it,
    and a marker longer than the secret it replaces cannot push a record past the queue's limit.
    """
    source = _source(facts)
    accepted: list[tuple[int, env.Envelope, str, int]] = []
    errors: list[ItemError] = []
    redactions: dict[str, int] = {}
    next_id = _IdPool(len(items)).take
    for index, item in items:
        try:
            record = build(item, index, facts, source, next_id)
            text = env.dumps(record)
            if redactor is not None:
                record, text = redact_record(record, text, redactor, redactions)
        except ItemRejected as exc:
            errors.append(ItemError(index, exc.code, exc.message))
            continue
        except orjson.JSONEncodeError:
            # The items come from orjson.loads, so the only thing its dumps can refuse is nesting
            # beyond its own limit (254 levels): deeper than any sensible max_depth.
            errors.append(ItemError(index, "too-deep", "nesting deeper than the serializer allows"))
            continue
        if text.count("{") + text.count("[") > max_depth and depth_exceeds(
            item.body if isinstance(item, DecodedRecord) else item, max_depth
        ):
            errors.append(ItemError(index, "too-deep", f"nesting deeper than {max_depth} levels"))
            continue
        size = len(text) if text.isascii() else len(text.encode())
        if size > max_record_bytes:
            errors.append(
                ItemError(
                    index, "record-too-large", f"record exceeds {max_record_bytes} bytes once serialized"
                )
            )
            continue
        accepted.append((index, record, text, size))
    return Normalized(accepted, errors, redactions)
