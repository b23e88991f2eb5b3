"""The ingest use case: one HTTP request in, records durably on the queue and the stream, a receipt out.

Everything AWS-shaped stays outside: the handler turns the API Gateway event into an ``HttpRequest``
and the sinks are injected, so this module is tested with in-memory fakes.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from core.envelope import now_received_at
from core.settings import IngestSettings
from core.tenancy import is_valid_tenant_id
from ingest.bodies import Limits, check_record_count, decode_body, decompress, parse_body
from ingest.normalize import Normalized, RequestFacts, build_decoded_envelope, normalize
from ingest.problems import ItemError, Problem
from ingest.protocols.records import Decoded, DecodedRecord, ProtocolError
from ingest.publish import OutRecord, RecordSink, publish, publish_pool
from ingest.quotas import QuotaEnforcer, QuotaExceeded, rate_limit_headers

if TYPE_CHECKING:
    from core.redaction import Redactor

# The route each record names in its envelope (source.route), and the kind of record it carries.
ROUTE_KIND = {
    "POST /events": "event",
    "POST /ingest": "log",
    "POST /webhooks/{source}": "event",
    "POST /v1/logs": "log",
    "POST /loki/api/v1/push": "log",
    **{
        f"POST /v1/{name}": "event"
        for name in ("batch", "track", "identify", "page", "screen", "group", "alias")
    },
    **{
        f"POST {path}{slash}": "event"
        for path in ("/batch", "/capture", "/e", "/i/v0/e")
        for slash in ("", "/")
    },
    "POST /com.snowplowanalytics.snowplow/tp2": "event",
    "GET /i": "event",
    "POST /t/{key}/com.snowplowanalytics.snowplow/tp2": "event",
    "GET /t/{key}/i": "event",
}
# Protocols whose records carry no id of their own and whose clients retry: a record is named by its
# content, so a retried request maps to the same event ids (docs/architecture.md §6).
CONTENT_IDENTITY_PROTOCOLS = frozenset({"otlp", "loki"})
# Headers that choose the tenant when no credential fixes it (and must agree with it when one does):
# X-Tenant-Id everywhere, and Loki's own X-Scope-OrgID on the Loki route.
TENANT_HEADERS = ("x-tenant-id",)
LOKI_TENANT_HEADERS = ("x-tenant-id", "x-scope-orgid")
# Headers that name the event type and the delivery id of common webhook senders.
EVENT_TYPE_HEADERS = ("x-github-event", "x-event-type", "x-gitlab-event", "x-webhook-event")
DELIVERY_ID_HEADERS = ("x-github-delivery", "x-delivery-id", "x-request-id-webhook")
RETRY_AFTER_SECONDS = "2"
RESPONSE_RESERVE_SECONDS = 2.0


@dataclass(frozen=True)
class HttpRequest:
    """The parts of an HTTP request the ingest path uses."""

    route: str
    headers: Mapping[str, str]  # names lower-cased
    body: str | None
    is_base64: bool = False
    request_id: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    auth_tenant: str | None = None  # set by the API-key authorizer
    webhook: Any = None  # a verified webhook (ingest.webhooks.Verified), set by ``ingest_webhook``


@dataclass
class Receipt:
    """The outcome of an accepted request, and the figures the handler turns into metrics.

    ``body`` is what the client is told (accepted ids, per-item errors); a protocol's ``encode`` turns it
    into that protocol's response.
    """

    body: dict[str, Any]
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    bytes_in: int = 0
    retries: int = 0
    redactions: Counter[str] = field(default_factory=Counter)  # replacements per rule, ingest-side


def _header_tenant(headers: Mapping[str, str], route: str) -> str | None:
    """The tenant the request names: ``X-Tenant-Id``, or on the Loki route ``X-Scope-OrgID`` (both must agree)."""
    names = LOKI_TENANT_HEADERS if route == "POST /loki/api/v1/push" else TENANT_HEADERS
    named = {(name, headers[name]) for name in names if headers.get(name) is not None}
    if len({value for _, value in named}) > 1:
        raise Problem(400, "invalid-tenant", "X-Tenant-Id and X-Scope-OrgID name different tenants")
    for name, value in named:
        if not is_valid_tenant_id(value):
            label = "X-Tenant-Id" if name == "x-tenant-id" else "X-Scope-OrgID"
            raise Problem(400, "invalid-tenant", f"{label} must match ^[A-Za-z0-9][A-Za-z0-9._-]{{0,63}}$")
        return value
    return None


def _facts(
    request: HttpRequest, kind: str, settings: IngestSettings, protocol: str = "sluice"
) -> RequestFacts:
    headers = request.headers
    header_tenant = _header_tenant(headers, request.route)
    tenant: str | None = None
    from_credential = False
    verified = request.webhook
    if verified is not None:
        tenant, from_credential = verified.tenant_id, True
    elif settings.auth_mode == "api_key":
        if not request.auth_tenant:
            raise Problem(401, "unauthorized", "this API requires an API key: Authorization: Bearer <key>")
        tenant, from_credential = request.auth_tenant, True
    if from_credential:
        if header_tenant is not None and header_tenant != tenant:
            raise Problem(
                403,
                "tenant-forbidden",
                "X-Tenant-Id or X-Scope-OrgID names a tenant this credential may not write",
            )
    else:
        tenant = header_tenant
    if verified is not None:
        # A verified delivery is named and typed only by what its scheme signs (or, for GitHub's
        # event header, claims): Idempotency-Key and other senders' type and delivery headers are ignored.
        event_type, delivery_id, idempotency_key = verified.event_type, verified.delivery_id, None
    else:
        event_type = next((headers[h] for h in EVENT_TYPE_HEADERS if headers.get(h)), None)
        delivery_id = next((headers[h] for h in DELIVERY_ID_HEADERS if headers.get(h)), None)
        idempotency_key = headers.get("idempotency-key") or None
    return RequestFacts(
        route=request.route if request.route in ROUTE_KIND else "POST /events",
        kind=kind,
        received_at=now_received_at(),
        default_tenant=settings.default_tenant,
        tenant_id=tenant,
        tenant_from_credential=from_credential,
        idempotency_key=idempotency_key,
        delivery_id=delivery_id,
        event_type=event_type,
        ip=request.source_ip,
        user_agent=request.user_agent,
        request_id=request.request_id,
        webhook=getattr(verified, "source", None),
        # Stripe names each event by its signed body's "id"; the verified identity is the fallback.
        id_field=getattr(verified, "id_field", None),
        webhook_identity=getattr(verified, "identity", None),
        protocol=protocol,
        content_identity=protocol in CONTENT_IDENTITY_PROTOCOLS,
    )


class IngestService:
    """Validates, normalizes and publishes the records of one request."""

    def __init__(
        self,
        settings: IngestSettings,
        sinks: Sequence[RecordSink],
        quotas: QuotaEnforcer | None = None,
        partitions: Callable[[str], int] | None = None,
    ) -> None:
        self.settings = settings
        self.limits = Limits.from_settings(settings)
        self.sinks = sinks
        self.quotas = quotas
        # A tenant's partition key values, stamped on its SQS messages (ingest/tenant_partitions.py).
        self.partitions: Callable[[str], int] = partitions or (lambda _tenant: settings.tenant_partitions)
        self._publish_pool = publish_pool()  # threads start on first use
        self._partition: Callable[[dict[str, Any]], str] = (
            (lambda e: e["tenant_id"]) if settings.partition_key == "tenant_id" else (lambda e: e["event_id"])
        )

    @property
    def redactor(self) -> Redactor | None:
        """The redaction rules applied before publishing (``INGEST_REDACTION``), or None when off.

        ``core.redaction.load`` compiles the rules once per process; the import waits for the first
        request, as every ingest module that a cold start need not pay for does.
        """
        if not self.settings.ingest_redaction:
            return None
        from core import redaction

        return redaction.load(self.settings.redaction_rules_path, self.settings.redact_ip_addresses)

    def read_body(self, request: HttpRequest) -> bytes:
        """The raw body bytes, size-checked (webhook signatures are computed over exactly these)."""
        return decode_body(request.body, request.is_base64, self.limits)

    def ingest_webhook(
        self,
        request: HttpRequest,
        source: str,
        now: float | None = None,
        remaining_seconds: float | None = None,
    ) -> Receipt:
        """Verify a delivery of webhook ``source`` (the ``{source}`` path parameter), then ingest it.

        The signature is over the exact bytes sent, so it is checked on the raw body before anything
        decodes it. ``now`` is the clock the signed timestamp is checked against (unix seconds).
        An unknown source and a failed verification answer the same 401 (source names must not be
        enumerable); which check failed goes to the operator's log only.
        """
        # Imported here: signature checking is off the /events and /ingest path, and cold starts pay
        # for every module the handler imports up front (`make bench`, cold start).
        from ingest.webhooks import SignatureError, configured_sources, verify_delivery

        raw = self.read_body(request)
        clock = time.time() if now is None else now
        try:
            verified = verify_delivery(configured_sources(), source, request.headers, raw, clock)
        except SignatureError as exc:
            raise Problem(
                exc.status,
                "signature-invalid",
                exc.message,
                extra={"reason": exc.code},
                log={"reason": exc.reason, "detail": exc.detail},
            ) from None
        verified_request = replace(request, webhook=verified)
        self._admit(verified_request, requests=1, size=len(raw))
        return self.ingest(verified_request, "event", raw=raw, remaining_seconds=remaining_seconds)

    def ingest(
        self,
        request: HttpRequest,
        kind: str,
        raw: bytes | None = None,
        remaining_seconds: float | None = None,
    ) -> Receipt:
        """Validate, normalize and publish; ``remaining_seconds`` is what the invocation has left.

        ``raw`` is the body already read by ``read_body`` (the webhook path reads it to check the signature).
        """
        if raw is None:
            self._admit(request, requests=1)
            raw = self.read_body(request)
            self._admit(request, size=len(raw))
        data = decompress(raw, request.headers.get("content-encoding"), self.limits)
        self._admit(request, size=len(data) - len(raw))
        parsed = parse_body(data, request.headers.get("content-type"), kind, self.limits)
        self._admit(request, records=parsed.total)
        facts = _facts(request, kind, self.settings)
        normalized = normalize(
            parsed.items,
            facts,
            self.limits.max_record_bytes,
            self.limits.max_depth,
            redactor=self.redactor,
        )
        return self._publish(request, normalized, parsed.errors, len(raw), remaining_seconds)

    def ingest_protocol(
        self,
        request: HttpRequest,
        protocol: str,
        decode: Callable[[bytes], Decoded],
        remaining_seconds: float | None = None,
        keep_encodings: frozenset[str] = frozenset(),
        authenticate: Callable[[bytes], str | None] | None = None,
    ) -> Receipt:
        """Ingest the records a protocol adapter decodes (``ingest/protocols/``) from the request's body.

        The body is read, size-checked and gunzipped (``Content-Encoding``) here, with the same caps as
        every route, then handed to ``decode``; ``keep_encodings`` are codings the adapter undoes itself
        (Loki's ``snappy``). A ``ProtocolError`` becomes the ``Problem`` of the same status and code.
        ``authenticate``, for routes whose key is checked in the function (``ingest.keyauth``), gets the
        decompressed body before ``decode`` and returns the credential's tenant (or raises a
        ``Problem``); it is called only when API keys are required.
        """
        self._admit(request, requests=1)
        raw = self.read_body(request)
        self._admit(request, size=len(raw))
        data = decompress(raw, request.headers.get("content-encoding"), self.limits, keep_encodings)
        if authenticate is not None and self.settings.auth_mode == "api_key":
            # The key is in the body: the tenant is known only now, so the whole request is charged now
            # (the checks above charged nothing: an unauthenticated request names no tenant to charge).
            request = replace(request, auth_tenant=authenticate(data))
            self._admit(request, requests=1, size=len(data))
        else:
            self._admit(request, size=len(data) - len(raw))
        try:
            decoded = decode(data)
        except ProtocolError as exc:
            raise Problem(exc.status, exc.code, exc.message) from None
        return self.ingest_decoded(request, protocol, decoded, len(raw), remaining_seconds)

    def ingest_decoded(
        self,
        request: HttpRequest,
        protocol: str,
        decoded: Decoded,
        bytes_in: int,
        remaining_seconds: float | None = None,
    ) -> Receipt:
        """Validate, normalize and publish records already decoded by a protocol adapter.

        The same tenant rules, limits (record count before any envelope is built, record size, nesting),
        envelope, idempotency and durability as ``ingest``; ``protocol`` is recorded as
        ``source.protocol``. ``bytes_in`` is the body's size as sent.
        """
        check_record_count(len(decoded.records) + len(decoded.errors), self.limits)
        self._admit(request, records=len(decoded.records) + len(decoded.errors))
        kind = ROUTE_KIND.get(request.route, "log")
        facts = _facts(request, kind, self.settings, protocol)
        if not decoded.records and not decoded.errors:
            # An export with nothing in it (OTLP and Loki clients send them) is a success, once the
            # credential and tenant rules above have passed.
            body = {
                "accepted": 0,
                "rejected": 0,
                "event_ids": [],
                "errors": [],
                "request_id": request.request_id,
            }
            return Receipt(body=body, bytes_in=bytes_in)
        items = _indexed(decoded)
        normalized = normalize(
            items,
            facts,
            self.limits.max_record_bytes,
            self.limits.max_depth,
            build=build_decoded_envelope,
            redactor=self.redactor,
        )
        return self._publish(request, normalized, decoded.errors, bytes_in, remaining_seconds)

    def quota_tenant(self, request: HttpRequest) -> str | None:
        """The tenant a request's quotas are charged to, known before its body is read: the verified
        webhook's or the API key's tenant; with API keys off, ``X-Tenant-Id`` (``X-Scope-OrgID``), else
        ``DEFAULT_TENANT`` (a body's ``tenant_id`` is known only after parsing). None while API keys are
        on and the request is not authenticated yet: an unverified header must never spend, and so
        starve, another tenant's quota."""
        if request.webhook is not None:
            return str(request.webhook.tenant_id)
        if request.auth_tenant:
            return request.auth_tenant
        if self.settings.auth_mode == "api_key":
            return None
        return _header_tenant(request.headers, request.route) or self.settings.default_tenant

    def _admit(self, request: HttpRequest, requests: int = 0, size: int = 0, records: int = 0) -> None:
        """Charge the request's tenant, or refuse it with 429 (``ingest/quotas.py``); a no-op without quotas.

        Called at each step as soon as its figure is known, so a flood is refused as cheaply as possible:
        requests before the body is read, bytes as sent before decompressing (then the rest of the
        decompressed size), records before any envelope is built.
        """
        if self.quotas is None or (requests <= 0 and size <= 0 and records <= 0):
            return
        tenant = self.quota_tenant(request)
        if tenant is None:
            return
        try:
            self.quotas.admit(tenant, {"requests": requests, "bytes": size, "records": records})
        except QuotaExceeded as exc:
            throttle = exc.throttle
            headers = rate_limit_headers(throttle, exc.policy)
            limit = throttle.limit
            raise Problem(
                429,
                "throttled",
                f"this tenant is over its {throttle.dimension} quota ({limit.rate:g}/s, burst "
                f"{limit.burst:g}); retry after {headers['Retry-After']} s",
                extra={"retry_after": throttle.retry_after_seconds, "quota": throttle.dimension},
                headers=headers,
                log={"tenant_id": tenant, "quota": throttle.dimension, "records": records},
            ) from None

    def _publish(
        self,
        request: HttpRequest,
        normalized: Normalized,
        refused: list[ItemError],
        bytes_in: int,
        remaining_seconds: float | None,
    ) -> Receipt:
        """Publish the accepted records to every sink, then the receipt; a 422 or 503 ``Problem`` if not."""
        errors = sorted([*refused, *normalized.errors], key=lambda e: e.index)
        rejected = Counter(e.code for e in errors)
        if not normalized.accepted:
            raise Problem(
                422,
                "all-items-invalid",
                f"none of the {len(errors)} item(s) could be accepted",
                extra={"errors": [e.to_dict() for e in errors[:100]], "rejected": len(errors)},
            )
        records = self._out_records(normalized.accepted)
        budget = self.settings.publish_budget_seconds
        if remaining_seconds is not None:
            # Keep a reserve to answer: a Lambda timeout would give the client a bare 5xx with no Retry-After.
            budget = max(0.1, min(budget, remaining_seconds - RESPONSE_RESERVE_SECONDS))
        report = publish(records, self.sinks, budget, self._publish_pool)
        missing = report.missing
        if missing:
            codes = Counter(missing.values())
            raise Problem(
                503,
                "publish-incomplete",
                f"{len(missing)} of {len(records)} record(s) could not be durably queued; retry the request "
                "with the same Idempotency-Key (or record ids) to avoid duplicates",
                extra={"retry_after": int(RETRY_AFTER_SECONDS), "errors_by_code": dict(codes)},
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )
        body = {
            "accepted": len(normalized.accepted),
            "rejected": len(errors),
            "event_ids": [record["event_id"] for _, record, _, _ in normalized.accepted],
            "errors": [e.to_dict() for e in errors],
            "request_id": request.request_id,
        }
        return Receipt(
            body=body,
            accepted=len(normalized.accepted),
            rejected=rejected,
            bytes_in=bytes_in,
            retries=report.retries,
            redactions=Counter(normalized.redactions),
        )

    def _out_records(self, accepted: list[tuple[int, dict[str, Any], str, int]]) -> list[OutRecord]:
        # The same client identity twice in one request yields the same event id: publish it once.
        seen: set[str] = set()
        out: list[OutRecord] = []
        for _, record, text, size in accepted:
            event_id = record["event_id"]
            if event_id in seen:
                continue
            seen.add(event_id)
            tenant = record["tenant_id"]
            out.append(
                OutRecord(event_id, self._partition(record), text, size, tenant, self.partitions(tenant))
            )
        return out


def _indexed(decoded: Decoded) -> list[tuple[int, DecodedRecord]]:
    """The records with their batch indexes: an adapter's records take, in order, the indexes its
    errors leave free."""
    if not decoded.errors:
        return list(enumerate(decoded.records))
    taken = {e.index for e in decoded.errors}
    free = (i for i in range(len(decoded.records) + len(decoded.errors)) if i not in taken)
    return [(next(free), record) for record in decoded.records]
