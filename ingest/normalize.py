"""Items -> envelopes: tenant, ids, type, client hints and source metadata (DESIGN.md §2).

Pure: the request's facts come in as a ``RequestFacts`` value, so every rule here is tested without
API Gateway or AWS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from core import envelope as env
from core.ids import derive_event_id, new_event_id
from core.tenancy import is_valid_tenant_id
from ingest.problems import ItemError, Problem

MAX_TYPE_LENGTH = 256
MAX_CLIENT_ID_LENGTH = 512
_TIMESTAMP_FIELDS = ("timestamp", "time", "ts", "@timestamp", "created_at")
_TEXT_FIELDS = ("text", "message", "msg")
_LOG_RESERVED = frozenset(
    {"text", "message", "msg", "level", "severity", "log_id", "tenant_id", "attributes"}
)
# A log line's level, when it says one: "[error]", " INFO ", "WARN:" ... (first match, 200 chars).
_LEVEL_RE = re.compile(
    r"(?<![A-Za-z])(TRACE|DEBUG|INFO|NOTICE|WARN(?:ING)?|ERROR|ERR|CRIT(?:ICAL)?|FATAL|ALERT|EMERG(?:ENCY)?|SEVERE)(?![A-Za-z])",
    re.IGNORECASE,
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

    route: str  # "POST /events" | "POST /ingest"
    kind: str  # "event" | "log"
    received_at: str
    default_tenant: str
    tenant_id: str | None = None  # fixed by the credential, the webhook source or X-Tenant-Id
    tenant_from_credential: bool = False
    idempotency_key: str | None = None
    delivery_id: str | None = None
    event_type: str | None = None  # from X-GitHub-Event / X-Event-Type
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    webhook: str | None = None
    id_field: str | None = None  # a body field that is the sender's delivery id (Stripe's "id": "evt_...")


class ItemRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def detect_level(line: str) -> str | None:
    """The severity a log line names, normalized (``WARNING`` -> ``WARN``), or None."""
    match = _LEVEL_RE.search(line, 0, 200)
    if not match:
        return None
    level = match.group(1).upper()
    return _LEVEL_ALIASES.get(level, level)


def _client_id(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value[:MAX_CLIENT_ID_LENGTH]
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
            raise Problem(
                403,
                "tenant-forbidden",
                "an item names a tenant_id other than the request's tenant",
                extra={"tenant_id": facts.tenant_id},
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


def _identity(own_id: str | None, index: int, facts: RequestFacts) -> str | None:
    """The client-supplied identity of an item: its own id, else the request's key plus its position."""
    if own_id is not None:
        return own_id
    if facts.idempotency_key:
        return f"{facts.idempotency_key}#{index}"
    if facts.delivery_id:
        return f"{facts.delivery_id}#{index}"
    return None


def _source(facts: RequestFacts) -> dict[str, Any]:
    source: dict[str, Any] = {
        "route": facts.route,
        "ip": facts.ip,
        "user_agent": facts.user_agent,
        "request_id": facts.request_id,
    }
    if facts.delivery_id:
        source["delivery_id"] = facts.delivery_id
    if facts.webhook:
        source["webhook"] = facts.webhook
    return source


def build_envelope(item: Any, index: int, facts: RequestFacts, source: dict[str, Any]) -> env.Envelope:
    """One envelope from one parsed item; ``ItemRejected`` for an item that cannot be a record."""
    client: dict[str, str] = {}
    if facts.kind == "event":
        if not isinstance(item, dict):
            raise ItemRejected("not-an-object", f"an event must be a JSON object, got {type(item).__name__}")
        tenant = _tenant_for(item, facts)
        own_id = _client_id(item.get("event_id"))
        if own_id is None and facts.id_field:
            own_id = _client_id(item.get(facts.id_field))
        record: env.Envelope = {"v": env.VERSION, "kind": "event", "tenant_id": tenant, "event_id": ""}
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
        record = {"v": env.VERSION, "kind": "log", "tenant_id": tenant, "event_id": ""}
        body_fields = {"text": text}
        if level:
            body_fields["level"] = level
        if attributes:
            body_fields["attributes"] = attributes
        event_type = obj.get("type") if obj is not None and isinstance(obj.get("type"), str) else None
    identity = _identity(own_id, index, facts)
    if identity is not None:
        record["event_id"] = derive_event_id(tenant, facts.kind, identity)
        client["event_id"] = identity
    else:
        record["event_id"] = new_event_id()
    stamp = _timestamp(item) if isinstance(item, dict) else None
    if stamp:
        client["timestamp"] = stamp
    record["received_at"] = facts.received_at
    record["type"] = event_type
    if client:
        record["client"] = client
    record["source"] = source
    record.update(body_fields)
    return record


@dataclass
class Normalized:
    """Envelopes ready to publish (index, envelope, serialized text, its UTF-8 size) and refused items."""

    accepted: list[tuple[int, env.Envelope, str, int]]
    errors: list[ItemError]


def normalize(items: list[tuple[int, Any]], facts: RequestFacts, max_record_bytes: int) -> Normalized:
    """Envelopes for every acceptable item, in request order; refused items become ``ItemError``s."""
    source = _source(facts)
    accepted: list[tuple[int, env.Envelope, str, int]] = []
    errors: list[ItemError] = []
    for index, item in items:
        try:
            record = build_envelope(item, index, facts, source)
        except ItemRejected as exc:
            errors.append(ItemError(index, exc.code, exc.message))
            continue
        text = env.dumps(record)
        size = len(text) if text.isascii() else len(text.encode())
        if size > max_record_bytes:
            errors.append(
                ItemError(
                    index, "record-too-large", f"record exceeds {max_record_bytes} bytes once serialized"
                )
            )
            continue
        accepted.append((index, record, text, size))
    return Normalized(accepted, errors)
