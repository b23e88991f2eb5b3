"""The local API Gateway: an ASGI app that turns each HTTP request into an API Gateway HTTP API
(payload format 2.0) event and calls the same ingest handler (and authorizer Lambda handler) that is
deployed, on the routes of ``core/wiring.json`` that infra/api.tf also creates."""

from __future__ import annotations

import asyncio
import base64
import functools
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, NamedTuple

from core import wiring
from local.sources import Handler, LambdaContext

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

INGEST_FUNCTION = "ingest"
_PATH_PARAMETER = re.compile(r"\{(\w+)\}")


class Route(NamedTuple):
    """One route as the local gateway matches it."""

    method: str
    pattern: re.Pattern[str]  # the path, a {name} parameter as the named group (?P<name>[^/]+)
    key: str  # API Gateway's route key, e.g. "POST /webhooks/{source}"
    protected: bool  # the API key authorizer runs first (when the gateway has one)


def path_pattern(path: str) -> re.Pattern[str]:
    """A regex for an API Gateway route path: literal text, ``{name}`` matching one path segment."""
    parts = _PATH_PARAMETER.split(path)  # literal, name, literal, name, ..., literal
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
    return re.compile(f"^{regex}$")


@functools.cache
def routes() -> tuple[Route, ...]:
    """The routes of ``core/wiring.json``; the authorizer guards the ones it guards on AWS."""
    declared = wiring.load().routes
    others = sorted(r.key for r in declared if r.function != INGEST_FUNCTION)
    if others:
        # The local gateway has one integration, as infra/api.tf has: a route served by another
        # function needs both to learn about it.
        raise RuntimeError(f"core/wiring.json routes {others} to a function other than {INGEST_FUNCTION!r}")
    return tuple(Route(r.method, path_pattern(r.path), r.key, r.authorizer) for r in declared)


# API Gateway's own payload limit: 10 MB. Reading stops there, as the managed service would.
API_GATEWAY_MAX_BODY = 10 * 1024 * 1024
TEXT_TYPES = ("text/", "application/json", "application/x-ndjson", "application/problem+json")


def match_route(method: str, path: str) -> tuple[str, dict[str, str], bool]:
    for route_method, pattern, route_key, protected in routes():
        found = pattern.match(path)
        if found and method == route_method:
            return route_key, found.groupdict(), protected
    return "$default", {}, False


def build_event(scope: Scope, body: bytes, route_key: str, path_params: dict[str, str]) -> dict[str, Any]:
    """The payload-2.0 event API Gateway would send for this request."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for raw_name, raw_value in scope.get("headers", []):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    query = scope.get("query_string", b"").decode("latin-1")
    params: dict[str, str] = {}
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        params[key] = f"{params[key]},{value}" if key in params else value
    client = scope.get("client") or ("127.0.0.1", 0)
    content_type = headers.get("content-type", "")
    textual = not headers.get("content-encoding") and content_type.startswith(TEXT_TYPES)
    try:
        text = body.decode("utf-8") if textual else None
    except UnicodeDecodeError:
        text = None
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": scope["path"],
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": scope["method"],
                "path": scope["path"],
                "protocol": f"HTTP/{scope.get('http_version', '1.1')}",
                "sourceIp": client[0],
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": base64.b64encode(uuid.uuid4().bytes[:12]).decode().rstrip("="),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": text is None and bool(body),
    }
    if cookies:
        event["cookies"] = cookies
    if params:
        event["queryStringParameters"] = params
    if path_params:
        event["pathParameters"] = path_params
    if body:
        event["body"] = text if text is not None else base64.b64encode(body).decode()
    return event


class LocalApiGateway:
    """ASGI application: routing, the optional authorizer, and the ingest handler in a thread pool."""

    def __init__(
        self,
        handler: Handler,
        authorizer: Handler | None = None,
        timeout_seconds: int = 29,
        concurrency: int = 16,
    ) -> None:
        self.handler = handler
        self.authorizer = authorizer
        self.timeout_seconds = timeout_seconds
        self.requests = 0
        # API Gateway invokes the functions up to their concurrency. asyncio's default executor would cap
        # the local gateway at min(32, cores + 4) invocations (6 on 2 cores), authorizer calls included:
        # a few slow requests of one tenant would hold every slot and queue every other tenant's.
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="gateway")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        self.requests += 1
        body, too_large = await _read_body(receive)
        if too_large:
            await _respond(
                send, 413, {"content-type": "application/json"}, b'{"message":"Request Entity Too Large"}'
            )
            return
        route_key, path_params, protected = match_route(scope["method"], scope["path"])
        event = build_event(scope, body, route_key, path_params)
        loop = asyncio.get_running_loop()
        if protected and self.authorizer is not None:
            denied = await loop.run_in_executor(self._executor, self._authorize, event)
            if denied is not None:
                await _respond(send, *denied)
                return
        context = LambdaContext("ingest", self.timeout_seconds)
        started = time.monotonic()
        try:
            result = await asyncio.wait_for(
                loop.run_in_executor(self._executor, self.handler, event, context),
                timeout=self.timeout_seconds,
            )
        except TimeoutError:
            await _respond(
                send, 503, {"content-type": "application/json"}, b'{"message":"Service Unavailable"}'
            )
            return
        except Exception:
            # API Gateway answers 500 when the integration itself fails.
            await _respond(
                send, 500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}'
            )
            return
        headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        headers["x-sluice-duration-ms"] = f"{(time.monotonic() - started) * 1000:.1f}"
        payload = result.get("body") or ""
        raw = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
        await _respond(send, int(result.get("statusCode", 200)), headers, raw)

    def _authorize(self, event: dict[str, Any]) -> tuple[int, dict[str, str], bytes] | None:
        # API Gateway: no identity source -> 401 without calling the authorizer; a "no" -> 403.
        if "authorization" not in event["headers"]:
            return 401, {"content-type": "application/json"}, b'{"message":"Unauthorized"}'
        assert self.authorizer is not None
        answer = self.authorizer(event, LambdaContext("authorizer", 10))
        if not answer.get("isAuthorized"):
            return 403, {"content-type": "application/json"}, b'{"message":"Forbidden"}'
        event["requestContext"]["authorizer"] = {"lambda": answer.get("context") or {}}
        return None


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        piece = message.get("body", b"")
        size += len(piece)
        if size > API_GATEWAY_MAX_BODY:
            return b"", True
        chunks.append(piece)
        if not message.get("more_body"):
            return b"".join(chunks), False


async def _respond(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    pairs = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    pairs.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": pairs})
    await send({"type": "http.response.body", "body": body})
