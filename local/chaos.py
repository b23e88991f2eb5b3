"""A fault-injecting reverse proxy for the AWS emulator: the failures AWS really produces, on purpose.

Put it between the handlers and moto (``AWS_ENDPOINT_URL`` of the handlers points at the proxy); it
forwards every request unchanged except where a rule says to inject a fault:

- **per-entry partial failures** of the three batch calls the pipeline makes. They are *faithful*: a
  record reported failed is really not written. The proxy forwards only the entries that are to
  succeed and splices the upstream answer with the failed ones, in the caller's order:
  Kinesis ``PutRecords`` (``ErrorCode: ProvisionedThroughputExceededException`` + ``FailedRecordCount``),
  SQS ``SendMessageBatch`` (``Failed`` entries, ``SenderFault: false``) and DynamoDB ``BatchWriteItem``
  (``UnprocessedItems``);
- **whole-call throttling** in each service's own error shape (all three speak the JSON protocol in
  current botocore: ``__type`` names the code; S3 speaks REST-XML and gets ``503 SlowDown``);
- **an outage window**: every request is answered ``503 ServiceUnavailable`` for N seconds. It stands
  for the emulator restarting. A real moto restart would not do: moto keeps its state in memory, so a
  restart erases every queued message and stored item, which no AWS outage does.

Decisions come from one ``random.Random(seed)``. With one caller the sequence of faults is reproducible;
with concurrent callers the order in which threads draw from it varies, so the *rates* are reproducible
and the exact records hit are not. Every injected fault is counted (``ChaosProxy.counts``) so a test can
print what it survived.

The fault logic (``Injector``) is plain functions over request and response bytes, unit-tested without
sockets; ``ChaosProxy`` is the thin threaded HTTP server around it.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

# X-Amz-Target prefixes of the JSON-protocol services the pipeline uses -> short service names.
TARGET_PREFIXES = {"Kinesis_20131202": "kinesis", "AmazonSQS": "sqs", "DynamoDB_20120810": "dynamodb"}
JSON_CONTENT_TYPE = {"kinesis": "application/x-amz-json-1.1", "sqs": "application/x-amz-json-1.0",
                     "dynamodb": "application/x-amz-json-1.0"}  # fmt: skip
# The codes each service answers when it throttles a whole call (the codes botocore and core.errors
# both treat as retryable).
THROTTLE_CODES = {
    "kinesis": "ProvisionedThroughputExceededException",
    "sqs": "RequestThrottled",
    "dynamodb": "ProvisionedThroughputExceededException",
}
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
                        "proxy-connection", "content-length", "x-amz-crc32"})  # fmt: skip


@dataclass(frozen=True)
class ChaosRules:
    """What to inject, and how often. Probabilities are per entry (partial failures) or per call.

    ``throttle`` maps an operation (``"kinesis:PutRecords"``, ``"sqs:SendMessageBatch"``,
    ``"dynamodb:BatchWriteItem"``, ``"s3:PUT"`` ...) to the probability that a whole call is throttled.
    """

    seed: int = 0
    kinesis_entry_failure: float = 0.0
    sqs_entry_failure: float = 0.0
    dynamodb_unprocessed: float = 0.0
    throttle: Mapping[str, float] = field(default_factory=dict)

    @property
    def quiet(self) -> bool:
        return not (
            self.kinesis_entry_failure or self.sqs_entry_failure or self.dynamodb_unprocessed or self.throttle
        )


@dataclass(frozen=True)
class Reply:
    """An answer the proxy gives itself, without asking the emulator."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Forward:
    """Forward ``body`` (possibly with entries removed); ``splice`` rebuilds the caller's answer."""

    body: bytes
    operation: str = ""
    failed: tuple[int, ...] = ()  # caller's entry positions that were held back
    total: int = 0
    held: tuple[Any, ...] = ()  # the held-back entries themselves (DynamoDB: its put requests)


def operation_of(method: str, path: str, headers: Mapping[str, str]) -> str:
    """``"kinesis:PutRecords"`` from X-Amz-Target; REST calls (S3) as ``"s3:<METHOD>"``."""
    target = headers.get("x-amz-target", "")
    if target:
        prefix, _, name = target.partition(".")
        return f"{TARGET_PREFIXES.get(prefix, prefix)}:{name}"
    return f"s3:{method}"


def error_reply(service: str, status: int, code: str, message: str) -> Reply:
    """An error in the service's protocol: JSON ``__type`` for the JSON services, XML for S3."""
    if service == "s3":
        body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
        return Reply(status, {"content-type": "application/xml"}, body.encode())
    headers = {"content-type": JSON_CONTENT_TYPE.get(service, "application/x-amz-json-1.0")}
    if service == "sqs":  # SQS is "query compatible": botocore reads the legacy code from this header
        headers["x-amzn-query-error"] = f"{code};{'Sender' if status < 500 else 'Receiver'}"
    return Reply(status, headers, orjson.dumps({"__type": code, "message": message}))


class Injector:
    """The fault decisions and the request/response rewriting: no sockets, no threads of its own."""

    def __init__(self, rules: ChaosRules | None = None) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.rules = rules or ChaosRules()
        self._rng = random.Random(self.rules.seed)
        self._outage_until = 0.0

    def set_rules(self, rules: ChaosRules) -> None:
        with self._lock:
            self.rules = rules
            self._rng = random.Random(rules.seed)

    def outage(self, seconds: float) -> None:
        """Answer every request 503 for the next ``seconds``."""
        with self._lock:
            self._outage_until = time.monotonic() + seconds

    @property
    def in_outage(self) -> bool:
        return time.monotonic() < self._outage_until

    def count(self, name: str, n: int = 1) -> None:
        if n:
            with self._lock:
                self.counts[name] += n

    def _draw(self, p: float, n: int) -> list[int]:
        with self._lock:
            return [i for i in range(n) if p > 0 and self._rng.random() < p]

    def plan(self, operation: str, body: bytes) -> Forward | Reply:
        """What to do with one request: forward it (maybe trimmed) or answer it here."""
        service = operation.partition(":")[0]
        if self.in_outage:
            self.count("outage_503")
            return error_reply(service, 503, "ServiceUnavailable", "the emulator is restarting (injected)")
        rules = self.rules
        p = rules.throttle.get(operation, 0.0)
        if p and self._draw(p, 1):
            self.count(f"{operation}:throttled")
            if service == "s3":
                return error_reply("s3", 503, "SlowDown", "Please reduce your request rate. (injected)")
            return error_reply(service, 400, THROTTLE_CODES.get(service, "ThrottlingException"),
                               "Rate exceeded (injected)")  # fmt: skip
        if operation == "kinesis:PutRecords" and rules.kinesis_entry_failure:
            return self._trim_list(operation, body, "Records", rules.kinesis_entry_failure)
        if operation == "sqs:SendMessageBatch" and rules.sqs_entry_failure:
            return self._trim_list(operation, body, "Entries", rules.sqs_entry_failure)
        if operation == "dynamodb:BatchWriteItem" and rules.dynamodb_unprocessed:
            return self._trim_batch_write(operation, body, rules.dynamodb_unprocessed)
        return Forward(body)

    def _trim_list(self, operation: str, body: bytes, key: str, p: float) -> Forward | Reply:
        request = orjson.loads(body)
        entries = request.get(key) or []
        failed = self._draw(p, len(entries))
        if not failed:
            return Forward(body)
        self.count(f"{operation}:entries_failed", len(failed))
        plan = Forward(b"", operation, tuple(failed), len(entries))
        if len(failed) == len(entries):  # nothing to forward: the answer is all failures
            return Reply(200, {"content-type": JSON_CONTENT_TYPE[operation.partition(":")[0]]},
                         self.splice(plan, b"", request))  # fmt: skip
        kept = [e for i, e in enumerate(entries) if i not in set(failed)]
        return Forward(orjson.dumps({**request, key: kept}), operation, tuple(failed), len(entries),
                       held=(request,))  # fmt: skip

    def _trim_batch_write(self, operation: str, body: bytes, p: float) -> Forward | Reply:
        request = orjson.loads(body)
        items = request.get("RequestItems") or {}
        flat = [(table, r) for table, requests in items.items() for r in requests]
        failed = set(self._draw(p, len(flat)))
        if not failed:
            return Forward(body)
        self.count(f"{operation}:unprocessed", len(failed))
        held = tuple(flat[i] for i in sorted(failed))
        plan = Forward(b"", operation, tuple(sorted(failed)), len(flat), held)
        if len(failed) == len(flat):
            return Reply(
                200, {"content-type": JSON_CONTENT_TYPE["dynamodb"]}, self.splice(plan, b"{}", request)
            )
        kept: dict[str, list[Any]] = {}
        for i, (table, r) in enumerate(flat):
            if i not in failed:
                kept.setdefault(table, []).append(r)
        return Forward(
            orjson.dumps({**request, "RequestItems": kept}), operation, plan.failed, len(flat), held
        )

    def splice(self, plan: Forward, upstream: bytes, request: Any = None) -> bytes:
        """The caller's answer: the upstream answer for the forwarded entries plus the held-back ones."""
        answer: dict[str, Any] = orjson.loads(upstream) if upstream else {}
        failed = set(plan.failed)
        if plan.operation == "kinesis:PutRecords":
            done = iter(answer.get("Records") or [])
            records = []
            for i in range(plan.total):
                if i in failed:
                    records.append({"ErrorCode": "ProvisionedThroughputExceededException",
                                    "ErrorMessage": "Rate exceeded for shard (injected)"})  # fmt: skip
                else:
                    records.append(next(done))
            answer["Records"] = records
            answer["FailedRecordCount"] = sum(1 for r in records if "ErrorCode" in r)
        elif plan.operation == "sqs:SendMessageBatch":
            entries = (request or plan.held[0])["Entries"]
            answer.setdefault("Successful", [])
            answer["Failed"] = [*(answer.get("Failed") or []), *(
                {"Id": entries[i]["Id"], "SenderFault": False, "Code": "InternalError",
                 "Message": "injected entry failure"} for i in sorted(failed)
            )]  # fmt: skip
        elif plan.operation == "dynamodb:BatchWriteItem":
            unprocessed: dict[str, list[Any]] = answer.get("UnprocessedItems") or {}
            for table, r in plan.held:
                unprocessed.setdefault(table, []).append(r)
            answer["UnprocessedItems"] = unprocessed
        return orjson.dumps(answer)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _proxy(self) -> None:
        injector = self.server.injector
        body = self._body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        operation = operation_of(self.command, urllib.parse.urlsplit(self.path).path, headers)
        plan = injector.plan(operation, body)
        if isinstance(plan, Reply):
            self._send(plan.status, plan.headers, plan.body)
            return
        forward_headers = {k: v for k, v in headers.items() if k not in HOP_BY_HOP}
        status, upstream_headers, upstream_body = self.server.forward(self.command, self.path, forward_headers,
                                                                      plan.body)  # fmt: skip
        if plan.failed and 200 <= status < 300:
            upstream_body = injector.splice(plan, upstream_body)
        if self.command == "HEAD":
            self._send(status, upstream_headers, b"", head_length=upstream_headers.get("content-length"))
        else:
            self._send(
                status, {k: v for k, v in upstream_headers.items() if k not in HOP_BY_HOP}, upstream_body
            )

    def _send(
        self, status: int, headers: Mapping[str, str], body: bytes, head_length: str | None = None
    ) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("content-length", head_length if head_length is not None else str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _proxy


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], upstream: str, injector: Injector) -> None:
        super().__init__(address, _Handler)
        parts = urllib.parse.urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname or "127.0.0.1", parts.port or 80
        self.injector = injector
        self._local = threading.local()

    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        for attempt in (0, 1):  # one reconnect: the emulator may have closed an idle keep-alive connection
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port,
                                                                     timeout=120)  # fmt: skip
            try:
                conn.request(method, path, body=body if body or method not in ("GET", "HEAD") else None,
                             headers=headers)  # fmt: skip
                response = conn.getresponse()
                data = response.read()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, data
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


class ChaosProxy:
    """The running proxy: ``url`` for AWS_ENDPOINT_URL, ``counts`` of what was injected."""

    def __init__(
        self, upstream: str, rules: ChaosRules | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.injector = Injector(rules)
        self._server = _Server((host, port), upstream, self.injector)
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="chaos-proxy", daemon=True)

    def start(self) -> ChaosProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def set_rules(self, rules: ChaosRules) -> None:
        self.injector.set_rules(rules)

    def calm(self) -> None:
        """Stop injecting (rules off); counts are kept."""
        self.injector.set_rules(ChaosRules())

    def outage(self, seconds: float) -> None:
        self.injector.outage(seconds)

    @property
    def counts(self) -> dict[str, int]:
        with self.injector._lock:
            return dict(self.injector.counts)
