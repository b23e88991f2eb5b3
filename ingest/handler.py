"""The ingest Lambda: API Gateway HTTP API (payload 2.0) routes, thin over ``ingest.service``."""

from __future__ import annotations

import functools
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from core.observability import discard_metrics_if_disabled, log_json
from core.settings import IngestSettings
from ingest.problems import Problem
from ingest.protocols import Reply, native
from ingest.protocols.records import Decoded
from ingest.publish import KinesisPublisher, RecordSink, SqsPublisher
from ingest.quotas import QuotaEnforcer, policy_from_settings
from ingest.service import HttpRequest, IngestService, Receipt
from ingest.tenant_partitions import TenantPartitions


def _json(obj: Any) -> str:
    return orjson.dumps(obj).decode()


logger = Logger(json_serializer=log_json)
metrics = Metrics()
app = APIGatewayHttpResolver(serializer=_json)
OPENAPI_PATH = Path(__file__).parent / "openapi.json"
OTLP_ROUTE = "POST /v1/logs"
LOKI_ROUTE = "POST /loki/api/v1/push"
BINARY_CONTENT_TYPES = frozenset({"application/x-protobuf", "image/gif"})
SEGMENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")
SEGMENT_ROUTES = frozenset({"POST /v1/batch", *(f"POST /v1/{name}" for name in SEGMENT_TYPES)})
# PostHog's capture paths, each declared with and without its trailing slash (route keys are exact).
POSTHOG_PATHS = ("/batch", "/capture", "/e", "/i/v0/e")
POSTHOG_ROUTES = frozenset(f"POST {path}{slash}" for path in POSTHOG_PATHS for slash in ("", "/"))
# Snowplow's collector paths; under /t/{key} for trackers that cannot send a header.
SNOWPLOW_TP2 = "/com.snowplowanalytics.snowplow/tp2"
SNOWPLOW_ROUTES = frozenset(
    {f"POST {SNOWPLOW_TP2}", "GET /i", f"POST /t/{{key}}{SNOWPLOW_TP2}", "GET /t/{key}/i"}
)


@functools.cache
def settings() -> IngestSettings:
    return IngestSettings.from_env()


@functools.cache
def service() -> IngestService:
    """The service with its publishers, built once per container on first use."""
    s = settings()
    sinks: list[RecordSink] = [
        SqsPublisher(s.queue_url, max_batch_bytes=s.sqs_batch_max_bytes),
        KinesisPublisher(s.stream_name),
    ]
    return IngestService(s, sinks, quota_enforcer(), tenant_partitions())


@functools.cache
def tenant_partitions() -> TenantPartitions:
    """This container's view of tenants' partition counts (the default, or overrides from the quota table)."""
    from ingest.quota_store import DynamoQuotaStore

    s = settings()
    return TenantPartitions(
        s.tenant_partitions, DynamoQuotaStore(s.quota_table_name) if s.quota_table_name else None
    )


@functools.cache
def quota_enforcer() -> QuotaEnforcer | None:
    """This container's quota buckets (None when no quota is set), leasing from the shared store."""
    from ingest.quota_store import DynamoQuotaStore

    s = settings()
    policy = policy_from_settings(s)
    if policy.unlimited and not s.quota_table_name:
        return None
    return QuotaEnforcer(policy, DynamoQuotaStore(s.quota_table_name) if s.quota_table_name else None)


def _request(route: str) -> HttpRequest:
    event = app.current_event
    ctx = event.request_context
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    auth_tenant = (authorizer.get("lambda") or {}).get("tenant_id")
    return HttpRequest(
        route=route,
        headers=event.headers or {},
        body=event.get("body"),
        is_base64=bool(event.get("isBase64Encoded")),
        request_id=ctx.request_id,
        source_ip=ctx.http.source_ip,
        user_agent=ctx.http.user_agent,
        auth_tenant=auth_tenant,
    )


def _remaining_seconds() -> float | None:
    context = app.lambda_context
    return context.get_remaining_time_in_millis() / 1000 if context is not None else None


def _accepted(route: str, receipt: Receipt, reply: Reply | None = None) -> Response[Any]:
    """Count and log an accepted request, and answer it (``reply``: a protocol's own answer)."""
    metrics.add_metric(name="RecordsAccepted", unit=MetricUnit.Count, value=receipt.accepted)
    metrics.add_metric(name="BytesIn", unit=MetricUnit.Bytes, value=receipt.bytes_in)
    if receipt.retries:
        metrics.add_metric(name="PublishRetries", unit=MetricUnit.Count, value=receipt.retries)
    for reason, count in receipt.rejected.items():
        metrics.add_metric(name=f"RecordsRejected.{reason}", unit=MetricUnit.Count, value=count)
    for rule, count in receipt.redactions.items():
        metrics.add_metric(name=f"Redactions_{rule}", unit=MetricUnit.Count, value=count)
    if receipt.rejected:
        # The total alarms watch: CloudWatch alarms cannot SEARCH over the per-reason names.
        metrics.add_metric(
            name="RecordsRejected", unit=MetricUnit.Count, value=sum(receipt.rejected.values())
        )
    # DEBUG: a line per accepted request is the largest log cost at one event per request, and the
    # metrics above already count it; API Gateway's access log keeps one line per request anyway.
    # Refusals, retries and failures stay at INFO and above.
    log = logger.info if receipt.retries or receipt.rejected else logger.debug
    log(
        "request ingested",
        extra={
            "route": route,
            "accepted": receipt.accepted,
            "rejected": sum(receipt.rejected.values()),
            "bytes_in": receipt.bytes_in,
            "publish_retries": receipt.retries,
        },
    )
    return _response(native.encode(receipt) if reply is None else reply)


def _response(reply: Reply) -> Response[Any]:
    body = reply.body
    if isinstance(body, bytes) and reply.content_type not in BINARY_CONTENT_TYPES:
        body = body.decode()  # JSON and text go as text; only binary bodies need base64
    return Response(
        status_code=reply.status,
        content_type=reply.content_type,
        body=body,
        headers=reply.headers or None,
    )


def _ingest(route: str, kind: str) -> Response[Any]:
    receipt = service().ingest(_request(route), kind, remaining_seconds=_remaining_seconds())
    return _accepted(route, receipt)


@app.post("/events")
def post_events() -> Response[Any]:
    return _ingest("POST /events", "event")


@app.post("/ingest")
def post_ingest() -> Response[Any]:
    route = "POST /ingest"
    request = _request(route)
    if _media_type(request.headers.get("content-type")) != "application/x-www-form-urlencoded":
        return _ingest(route, "log")
    from ingest.protocols import form  # stdlib logging's HTTPHandler; off the JSON and text path

    content_type = request.headers.get("content-type")
    receipt = service().ingest_protocol(
        request, "form", lambda data: form.decode(data, content_type), _remaining_seconds()
    )
    return _accepted(route, receipt)


@app.post("/v1/logs")
def post_otlp_logs() -> Response[Any]:
    # Imported here, as every adapter below: protobuf and the OTLP classes cost /events nothing.
    from ingest.protocols import otlp

    route = OTLP_ROUTE
    request = _request(route)
    content_type = request.headers.get("content-type") or ""
    receipt = service().ingest_protocol(
        request, "otlp", lambda data: otlp.decode(data, content_type), _remaining_seconds()
    )
    return _accepted(route, receipt, _otlp_success(receipt, content_type))


@app.post("/loki/api/v1/push")
def post_loki_push() -> Response[Any]:
    from ingest.protocols import loki

    route = LOKI_ROUTE
    request = _request(route)
    content_type = request.headers.get("content-type")
    encoding = request.headers.get("content-encoding")
    # gzip is undone by the service; snappy, the default of Promtail and Alloy, by the adapter.
    snappy = "snappy" if "snappy" in (encoding or "").lower() else None
    svc = service()
    receipt = svc.ingest_protocol(
        request,
        "loki",
        lambda data: loki.decode(
            data, content_type, snappy, max_decompressed_bytes=svc.limits.max_decompressed_bytes
        ),
        _remaining_seconds(),
        keep_encodings=frozenset({"snappy"}),
    )
    rejected = int(receipt.body["rejected"])
    if rejected:
        # As Loki does: the valid entries are stored, and the push answers 400 naming the others
        # (clients do not retry a 400, so nothing is sent twice).
        text, media = loki.encode_error(
            _rejected_message(receipt.body["errors"], rejected) + "; the other entries were accepted"
        )
        return _accepted(route, receipt, Reply(400, media, text))
    status, empty, no_media = loki.encode_success()
    return _accepted(route, receipt, Reply(status, no_media, empty))


def _segment(path_type: str | None) -> Response[Any]:
    """One Segment HTTP Tracking API request: the write key from Basic auth or the body's
    ``writeKey`` (both, when sent, must be the same key), checked here (``ingest.keyauth``).

    The body is decoded once, before the key is checked (it may hold the key): an unreadable body is
    a 400 whatever its key."""
    from ingest.authorizer import api_key_of
    from ingest.keyauth import tenant_for_key
    from ingest.protocols import segment
    from ingest.protocols.records import ProtocolError

    route = f"POST /v1/{path_type or 'batch'}"
    request = _request(route)
    authorization = request.headers.get("authorization")
    header_key = api_key_of(authorization) if authorization else None
    decoded: list[tuple[Decoded, str | None]] = []

    def decode(data: bytes) -> tuple[Decoded, str | None]:
        if not decoded:
            decoded.append(segment.decode_with_key(data, path_type))
        return decoded[0]

    def authenticate(data: bytes) -> str:
        try:
            body_key = decode(data)[1]
        except ProtocolError as exc:
            raise Problem(exc.status, exc.code, exc.message) from None
        if header_key and body_key and body_key != header_key:
            raise Problem(
                403, "tenant-forbidden", "the body's writeKey is not the key of the Authorization header"
            )
        return tenant_for_key(header_key or body_key)

    receipt = service().ingest_protocol(
        request,
        "segment",
        lambda data: decode(data)[0],
        _remaining_seconds(),
        authenticate=authenticate,
    )
    status, body, media = segment.encode_success()
    if receipt.body["rejected"]:
        body = orjson.dumps(
            {"success": True, "rejected": receipt.body["rejected"], "errors": receipt.body["errors"][:100]}
        )
    return _accepted(route, receipt, Reply(status, media, body))


@app.post("/v1/batch")
def post_segment_batch() -> Response[Any]:
    return _segment(None)


def _segment_route(path_type: str) -> None:
    app.post(f"/v1/{path_type}")(lambda: _segment(path_type))


for _type in SEGMENT_TYPES:
    _segment_route(_type)


def _posthog(route: str) -> Response[Any]:
    """One PostHog capture request: every key it carries (``api_key``, ``token``, each event's
    ``properties.token``, a Bearer header) must be one key, checked here (``ingest.keyauth``).

    The key is in the body, so the body is decoded before the key is checked: an unreadable body is
    a 400 whatever its key.
    """
    from ingest.authorizer import bearer_token
    from ingest.keyauth import tenant_for_key
    from ingest.protocols import posthog
    from ingest.protocols.records import ProtocolError

    request = _request(route)
    content_type = request.headers.get("content-type")
    compression = (app.current_event.query_string_parameters or {}).get("compression")
    authorization = request.headers.get("authorization")
    header_key = bearer_token(authorization) if authorization else None
    svc = service()
    captured: list[posthog.Capture] = []

    def capture(data: bytes) -> posthog.Capture:
        if not captured:
            captured.append(
                posthog.decode(
                    data, content_type, compression, max_decompressed_bytes=svc.limits.max_decompressed_bytes
                )
            )
        return captured[0]

    def authenticate(data: bytes) -> str:
        try:
            keys = set(capture(data).keys)
        except ProtocolError as exc:
            raise Problem(exc.status, exc.code, exc.message) from None
        if header_key:
            keys.add(header_key)
        if len(keys) > 1:
            raise Problem(403, "tenant-forbidden", "the request carries more than one API key")
        return tenant_for_key(next(iter(keys), None))

    receipt = svc.ingest_protocol(
        request,
        "posthog",
        lambda data: capture(data).decoded,
        _remaining_seconds(),
        authenticate=authenticate,
    )
    status, body, media = posthog.encode_success()
    return _accepted(route, receipt, Reply(status, media, body))


def _posthog_route(route: str) -> None:
    app.post(route.split(" ", 1)[1])(lambda: _posthog(route))


for _route in sorted(POSTHOG_ROUTES):
    _posthog_route(_route)


def _snowplow_tenant(request: HttpRequest, path_key: str | None) -> HttpRequest:
    """The request with the tenant of its Snowplow key: the ``/t/{key}`` path segment (trackers send
    no credential, but their collector URL can carry one) or ``Authorization: Bearer``; both, when
    sent, must be the same key. Checked only when API keys are required."""
    from ingest.authorizer import bearer_token
    from ingest.keyauth import tenant_for_key

    if service().settings.auth_mode != "api_key":
        return request
    authorization = request.headers.get("authorization")
    header_key = bearer_token(authorization) if authorization else None
    if path_key and header_key and path_key != header_key:
        raise Problem(403, "tenant-forbidden", "the Authorization key is not the key of the path")
    return replace(request, auth_tenant=tenant_for_key(path_key or header_key))


def _snowplow_post(route: str, path_key: str | None) -> Response[Any]:
    from ingest.protocols import snowplow

    request = _snowplow_tenant(_request(route), path_key)
    receipt = service().ingest_protocol(request, "snowplow", snowplow.decode_post, _remaining_seconds())
    return _accepted(route, receipt, Reply(200, "text/plain; charset=utf-8", "ok"))


def _snowplow_pixel(route: str, path_key: str | None) -> Response[Any]:
    from ingest.protocols import snowplow

    request = _snowplow_tenant(_request(route), path_key)
    params = app.current_event.query_string_parameters or {}
    bytes_in = sum(len(k) + len(v) for k, v in params.items())
    receipt = service().ingest_decoded(
        request, "snowplow", snowplow.decode_get(params), bytes_in, _remaining_seconds()
    )
    return _accepted(route, receipt, Reply(200, snowplow.PIXEL_CONTENT_TYPE, snowplow.PIXEL))


@app.post(SNOWPLOW_TP2)
def post_snowplow() -> Response[Any]:
    return _snowplow_post(f"POST {SNOWPLOW_TP2}", None)


@app.post(f"/t/<key>{SNOWPLOW_TP2}")
def post_snowplow_keyed(key: str) -> Response[Any]:
    return _snowplow_post(f"POST /t/{{key}}{SNOWPLOW_TP2}", key)


@app.get("/i")
def get_snowplow_pixel() -> Response[Any]:
    return _snowplow_pixel("GET /i", None)


@app.get("/t/<key>/i")
def get_snowplow_pixel_keyed(key: str) -> Response[Any]:
    return _snowplow_pixel("GET /t/{key}/i", key)


@app.post("/webhooks/<source>")
def post_webhook(source: str) -> Response[Any]:
    route = "POST /webhooks/{source}"
    request = _request(route)
    receipt = service().ingest_webhook(
        request, source, now=time.time(), remaining_seconds=_remaining_seconds()
    )
    return _accepted(route, receipt)


@app.get("/health")
def health() -> Response[Any]:
    return Response(status_code=200, content_type="application/json", body='{"status":"ok"}')


@app.get("/openapi.json")
def openapi() -> Response[Any]:
    return Response(status_code=200, content_type="application/json", body=_openapi_text())


@functools.cache
def _openapi_text() -> str:
    return OPENAPI_PATH.read_text()


def _problem_response(problem: Problem) -> Response[Any]:
    """The refusal in the protocol of the route: OTLP's and Loki's clients read only their own forms."""
    event = app.current_event
    route = event.get("routeKey") if event else None
    if route == OTLP_ROUTE:
        return _response(_otlp_problem(problem, (event.headers or {}).get("content-type")))
    if route == LOKI_ROUTE:
        return _response(_loki_problem(problem))
    if route in POSTHOG_ROUTES:
        from ingest.protocols import posthog

        # Every event refused is a malformed request to PostHog's clients: 400, which they do not retry.
        status = 400 if problem.code == "all-items-invalid" else problem.status
        body, media = posthog.encode_error(status, problem.code, problem.detail)
        return _response(Reply(status, media, body, dict(problem.headers)))
    if route in SEGMENT_ROUTES:
        from ingest.protocols import segment

        body, media = segment.encode_error(problem.code, problem.detail)
        return _response(Reply(problem.status, media, body, dict(problem.headers)))
    request_id = event.request_context.request_id if event else None
    return _response(native.encode(problem, request_id))


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _rejected_message(errors: list[dict[str, Any]], rejected: int) -> str:
    shown = "; ".join(f"record {e['index']}: {e['code']}: {e['message']}" for e in errors[:5])
    more = f"; and {rejected - 5} more" if rejected > 5 else ""
    return f"{rejected} log record(s) rejected: {shown}{more}"


def _otlp_success(receipt: Receipt, content_type: str) -> Reply:
    """200 with an ExportLogsServiceResponse; ``partial_success`` names the records refused."""
    from ingest.protocols import otlp

    rejected = int(receipt.body["rejected"])
    message = _rejected_message(receipt.body["errors"], rejected) if rejected else ""
    body, media = otlp.encode_success(rejected, message, otlp.response_is_json(content_type))
    return Reply(200, media, body)


def _otlp_problem(problem: Problem, content_type: str | None) -> Reply:
    """OTLP/HTTP's failure answers: a google.rpc.Status with the HTTP status (Retry-After kept).

    A request whose every record was refused was still a valid request: OTLP says so with 200 and
    ``partial_success`` rejecting all of them (clients must not retry), not with an error status.
    """
    from ingest.protocols import otlp

    as_json = otlp.response_is_json(content_type)
    if problem.code == "all-items-invalid":
        rejected = int(problem.extra.get("rejected", 0))
        message = _rejected_message(problem.extra.get("errors", []), rejected)
        body, media = otlp.encode_success(rejected, message, as_json)
        return Reply(200, media, body)
    body, media = otlp.encode_status(problem.status, problem.detail, as_json)
    return Reply(problem.status, media, body, dict(problem.headers))


def _loki_problem(problem: Problem) -> Reply:
    """Loki's failure answers: the status with a plain-text message; every record refused is a 400."""
    from ingest.protocols import loki

    status = 400 if problem.code == "all-items-invalid" else problem.status
    message = problem.detail
    if problem.code == "all-items-invalid":
        message = _rejected_message(problem.extra.get("errors", []), int(problem.extra.get("rejected", 0)))
    body, media = loki.encode_error(message)
    return Reply(status, media, body, dict(problem.headers))


@app.exception_handler(Problem)
def on_problem(problem: Problem) -> Response[Any]:
    if problem.status >= 500:
        logger.error(
            "request failed", extra={"code": problem.code, "detail": problem.detail, **problem.extra}
        )
    else:
        metrics.add_metric(name=f"RequestsRefused.{problem.code}", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="RequestsRefused", unit=MetricUnit.Count, value=1)
        if problem.code == "throttled":
            _count_throttled(problem)
        logger.info("request refused", extra={"status": problem.status, "code": problem.code, **problem.log})
    return _problem_response(problem)


def _count_throttled(problem: Problem) -> None:
    """``ThrottledRequests`` and ``ThrottledRecords`` per tenant (a ``tenant`` dimension), and the quota
    store's failures: in their own EMF documents, so the invocation's metrics keep no tenant dimension.

    A metric exists per tenant that was throttled at least once in a period: cardinality follows the
    tenants that hit their quota, not every tenant (docs/security.md, quotas).
    """
    from aws_lambda_powertools.metrics import single_metric
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    if is_metrics_disabled():  # single_metric prints its document even then
        return
    tenant = str(problem.log.get("tenant_id", "unknown"))
    with single_metric(
        name="ThrottledRequests", unit=MetricUnit.Count, value=1, namespace=metrics.namespace
    ) as metric:
        metric.add_dimension(name="tenant", value=tenant)
    records = int(problem.log.get("records") or 0)
    if records:
        with single_metric(
            name="ThrottledRecords", unit=MetricUnit.Count, value=records, namespace=metrics.namespace
        ) as metric:
            metric.add_dimension(name="tenant", value=tenant)


def _count_quota_store() -> None:
    if tenant_partitions.cache_info().currsize and tenant_partitions().store_errors:
        # A tenant's partitions could not be read: its records were stamped with the last N seen (or the
        # default), under keys every reader still queries, and the tenant may write hotter than it should.
        metrics.add_metric(
            name="PartitionsStoreErrors", unit=MetricUnit.Count, value=tenant_partitions().store_errors
        )
        tenant_partitions().store_errors = 0
    if not quota_enforcer.cache_info().currsize:  # no request built the service (e.g. GET /health)
        return
    enforcer = quota_enforcer()
    if enforcer is None:
        return
    counters = enforcer.counters
    if counters.store_errors:
        metrics.add_metric(name="QuotaStoreErrors", unit=MetricUnit.Count, value=counters.store_errors)
    if counters.store_calls:
        metrics.add_metric(name="QuotaStoreCalls", unit=MetricUnit.Count, value=counters.store_calls)
    counters.store_errors = counters.store_calls = 0


@app.not_found
def on_not_found(_: NotFoundError) -> Response[Any]:
    return _problem_response(Problem(404, "not-found", "no such route"))


@app.exception_handler(Exception)
def on_error(exc: Exception) -> Response[Any]:
    logger.error("unhandled error", exc_info=exc)
    metrics.add_metric(name="InternalErrors", unit=MetricUnit.Count, value=1)
    return _problem_response(
        Problem(500, "internal-error", "an internal error occurred; the request was not accepted")
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        return app.resolve(event, context)
    finally:
        _count_quota_store()
        discard_metrics_if_disabled(metrics)
