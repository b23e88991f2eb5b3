"""202-or-503 within the function's timeout, even when AWS does not answer (docs/architecture.md §6).

A tiny HTTP server stands in for SQS and Kinesis and holds every request far longer than the function
may run. Before the publish path bounded each call by the time left, one call could take botocore's
3 attempts x 5 s read timeout, past the function timeout, and the client got API Gateway's bare 5xx.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from ingest import handler
from tests.support.fakes import LambdaContext, http_event

pytestmark = pytest.mark.integration

HOLD_SECONDS = 30.0


class SlowEndpoint:
    """An HTTP server that answers every request only after ``HOLD_SECONDS`` (or when stopped)."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.requests += 1
                self.rfile.read(int(self.headers.get("content-length") or 0))
                outer.stopping.wait(HOLD_SECONDS)
                try:
                    self.send_response(500)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> SlowEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlowEndpoint]:
    with SlowEndpoint() as endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.url)
        monkeypatch.setenv("QUEUE_URL", f"{endpoint.url}/123456789012/sluice-events")
        monkeypatch.setenv("STREAM_NAME", "sluice-events")
        monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
        handler.settings.cache_clear()
        handler.service.cache_clear()
        yield endpoint
        handler.settings.cache_clear()
        handler.service.cache_clear()


def test_a_publish_stuck_on_a_slow_endpoint_answers_503_with_retry_after_before_the_deadline(
    slow_aws: SlowEndpoint,
) -> None:
    # GIVEN an invocation with 4 s left and AWS endpoints that hold every request for 30 s
    context = LambdaContext(remaining_ms=4000)
    body = orjson.dumps([{"type": "signup", "n": i} for i in range(25)])
    start = time.monotonic()
    # WHEN events are posted
    response = handler.lambda_handler(http_event("POST /events", body, {"x-tenant-id": "acme"}), context)
    elapsed = time.monotonic() - start
    # THEN the answer is 503 with Retry-After, given before the function's deadline
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"]
    problem = orjson.loads(response["body"])
    assert problem["code"] == "publish-incomplete"
    assert elapsed < 4.0
    # AND the endpoint was really asked (the wait was on AWS, not skipped)
    assert slow_aws.requests > 0
