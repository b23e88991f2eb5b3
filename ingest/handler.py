"""The ingest Lambda: API Gateway HTTP API (payload 2.0) routes, thin over ``ingest.service``."""

from __future__ import annotations

import functools
import time
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
from ingest.publish import KinesisPublisher, RecordSink, SqsPublisher
from ingest.service import HttpRequest, IngestService, Receipt


def _json(obj: Any) -> str:
    return orjson.dumps(obj).decode()


logger = Logger(json_serializer=log_json)
metrics = Metrics()
app = APIGatewayHttpResolver(serializer=_json)
OPENAPI_PATH = Path(__file__).parent / "openapi.json"


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
    return IngestService(s, sinks)


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


def _accepted(route: str, receipt: Receipt) -> Response[str]:
    """Count and log an accepted request, and answer it."""
    metrics.add_metric(name="RecordsAccepted", unit=MetricUnit.Count, value=receipt.accepted)
    metrics.add_metric(name="BytesIn", unit=MetricUnit.Bytes, value=receipt.bytes_in)
    if receipt.retries:
        metrics.add_metric(name="PublishRetries", unit=MetricUnit.Count, value=receipt.retries)
    for reason, count in receipt.rejected.items():
        metrics.add_metric(name=f"RecordsRejected.{reason}", unit=MetricUnit.Count, value=count)
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
    return _response(native.encode(receipt))


def _response(reply: Reply) -> Response[str]:
    return Response(
        status_code=reply.status,
        content_type=reply.content_type,
        body=reply.body,
        headers=reply.headers or None,
    )


def _ingest(route: str, kind: str) -> Response[str]:
    receipt = service().ingest(_request(route), kind, remaining_seconds=_remaining_seconds())
    return _accepted(route, receipt)


@app.post("/events")
def post_events() -> Response[str]:
    return _ingest("POST /events", "event")


@app.post("/ingest")
def post_ingest() -> Response[str]:
    return _ingest("POST /ingest", "log")


@app.post("/webhooks/<source>")
def post_webhook(source: str) -> Response[str]:
    route = "POST /webhooks/{source}"
    request = _request(route)
    receipt = service().ingest_webhook(
        request, source, now=time.time(), remaining_seconds=_remaining_seconds()
    )
    return _accepted(route, receipt)


@app.get("/health")
def health() -> Response[str]:
    return Response(status_code=200, content_type="application/json", body='{"status":"ok"}')


@app.get("/openapi.json")
def openapi() -> Response[str]:
    return Response(status_code=200, content_type="application/json", body=_openapi_text())


@functools.cache
def _openapi_text() -> str:
    return OPENAPI_PATH.read_text()


def _problem_response(problem: Problem) -> Response[str]:
    request_id = app.current_event.request_context.request_id if app.current_event else None
    return _response(native.encode(problem, request_id))


@app.exception_handler(Problem)
def on_problem(problem: Problem) -> Response[str]:
    if problem.status >= 500:
        logger.error(
            "request failed", extra={"code": problem.code, "detail": problem.detail, **problem.extra}
        )
    else:
        metrics.add_metric(name=f"RequestsRefused.{problem.code}", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="RequestsRefused", unit=MetricUnit.Count, value=1)
        logger.info("request refused", extra={"status": problem.status, "code": problem.code, **problem.log})
    return _problem_response(problem)


@app.not_found
def on_not_found(_: NotFoundError) -> Response[str]:
    return _problem_response(Problem(404, "not-found", "no such route"))


@app.exception_handler(Exception)
def on_error(exc: Exception) -> Response[str]:
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
        discard_metrics_if_disabled(metrics)
