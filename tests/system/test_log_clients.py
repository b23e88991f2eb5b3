"""Real, unmodified log clients against the real local stack (a child process, API keys on).

Each client sends records with unicode, an e-mail address, lines over 8 KB and every severity; the
test then reads the events table and proves each record is stored exactly once, under the key's
tenant, with its text (redacted), level, time and attributes mapped, and that the client itself saw
success. A fault proxy in front of the HTTP API answers 503 to a share of the requests, before and
after forwarding them: the OTel exporter's own retries must still deliver everything exactly once,
which the content identity of records without ids makes possible (docs/architecture.md §3).

python-logging-loki and stdlib ``HTTPHandler`` have no retry logic (one POST per record, a failure is
handed to ``Handler.handleError`` or ignored), so only the OTel exporter is run through the proxy.
"""

from __future__ import annotations

import inspect
import logging
import logging.handlers
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from local.inspect import StackInspector
from local.process import StackProcess
from tests.support.clients import FaultProxy, client_venv, create_key
from tests.support.localkit import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RECORDS = 200
LEVELS = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL]
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
TENANTS = ("otel", "otel-retry", "otel-json", "loki", "stdlib")


@dataclass
class Running:
    api: str
    keys: dict[str, str]
    probe: StackInspector
    log_path: Path


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("log-clients")
    state = root / "state"
    with StackProcess(
        state, visibility_timeout=2, run_args=["--auth"], log_path=root / "stack.log"
    ) as process:
        stack = process.start()
        keys = {tenant: create_key(state, tenant) for tenant in TENANTS}
        yield Running(
            stack.api_url, keys, StackInspector.for_stack(stack, read_timeout=120), process.log_path
        )


def message(tag: str, i: int) -> str:
    """Record ``i`` of a client: every tenth has an e-mail address, others unicode or 9 KB of text."""
    head = f"rec-{tag}-{i:04d}"
    if i % 10 == 0:
        return f"{head} contact ana.{i}@example.com about order {i}"
    if i % 10 == 1:
        return f"{head} unicode ✓ naïve café 日本語 🚀"
    if i % 10 == 2:
        return f"{head} long " + "x" * 9000
    return f"{head} plain line {i}"


def send(logger: logging.Logger, tag: str, n: int = RECORDS) -> None:
    for i in range(n):
        logger.log(LEVELS[i % len(LEVELS)], message(tag, i), extra={"order_id": i})


def fresh_logger(name: str, handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger


def stored(
    probe: StackInspector, tenant: str, tag: str, n: int = RECORDS, timeout: float = 180
) -> dict[int, list[Any]]:
    """The stored records of ``tag`` by sequence number, once ``n`` are there (or the timeout passes)."""
    pattern = re.compile(rf"^rec-{re.escape(tag)}-(\d{{4}})")

    def collect() -> dict[int, list[Any]]:
        found: dict[int, list[Any]] = {}
        for record in probe.stored_records():
            match = pattern.match(str(record.get("text", "")))
            if match:
                found.setdefault(int(match.group(1)), []).append(record)
        return found

    wait_for(lambda: sum(len(v) for v in collect().values()) >= n, timeout=timeout, interval=2)
    time.sleep(3)  # anything more (a duplicate) would land within the worker's next batches
    return collect()


def check_stored(found: dict[int, list[Any]], tenant: str, tag: str, levels: list[str], start: float,
                 n: int = RECORDS) -> None:  # fmt: skip
    """Each record exactly once, under ``tenant``, its text (redacted), level and time mapped."""
    assert sorted(found) == list(range(n)), f"missing: {sorted(set(range(n)) - set(found))[:10]}"
    doubles = {i: len(v) for i, v in found.items() if len(v) != 1}
    assert not doubles, f"stored more than once: {doubles}"
    for i, (record,) in sorted(found.items()):
        expected = message(tag, i)
        assert record["tenant_id"] == tenant
        assert record["kind"] == "log"
        assert record["level"] == levels[i % len(levels)], (i, record["level"])
        if i % 10 == 0:
            assert not EMAIL.search(record["text"]), record["text"]
            assert "[REDACTED:email]" in record["text"]
            assert record["text"] == EMAIL.sub("[REDACTED:email]", expected)
        else:
            assert record["text"] == expected
        stamp = datetime.strptime(record["client"]["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert start - 1 <= stamp.timestamp() <= time.time() + 1


# --- OpenTelemetry SDK, OTLP/HTTP protobuf --------------------------------------------------------


class RecordingExporter:
    """The SDK's OTLP/HTTP exporter, keeping the result of every export it is asked for."""

    def __init__(self, endpoint: str, key: str) -> None:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        self.inner = OTLPLogExporter(
            endpoint=endpoint, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
        self.results: list[Any] = []

    def export(self, batch: Any) -> Any:
        result = self.inner.export(batch)
        self.results.append(result)
        return result

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        self.inner.shutdown()


def otel_logger(name: str, endpoint: str, key: str) -> tuple[logging.Logger, Any, RecordingExporter]:
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    exporter = RecordingExporter(endpoint, key)
    provider = LoggerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_log_record_processor(
        BatchLogRecordProcessor(exporter, max_export_batch_size=50, schedule_delay_millis=200)  # type: ignore[arg-type]
    )
    with pytest.warns(DeprecationWarning, match="LoggingHandler"):
        handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
    return fresh_logger(name, handler), provider, exporter


OTEL_LEVELS = ["DEBUG", "INFO", "WARN", "ERROR", "FATAL"]  # the SDK's severity_text for Python's levels


def test_otel_sdk_protobuf_exporter_stores_every_record_once(running: Running) -> None:
    start = time.time()
    logger, provider, exporter = otel_logger("sys.otel", f"{running.api}/v1/logs", running.keys["otel"])
    send(logger, "otel")
    assert provider.force_flush(60_000)
    provider.shutdown()
    from opentelemetry.sdk._logs.export import LogRecordExportResult

    assert exporter.results and set(exporter.results) == {LogRecordExportResult.SUCCESS}
    found = stored(running.probe, "otel", "otel")
    check_stored(found, "otel", "otel", OTEL_LEVELS, start)
    record = found[7][0]
    assert record["source"]["protocol"] == "otlp"
    assert record["attributes"]["order_id"] == 7
    assert record["attributes"]["resource"]["service.name"] == "checkout"
    assert record["attributes"]["scope"]["name"] == "sys.otel"
    assert record["attributes"]["code.function.name"] == "send"
    assert record["attributes"]["severity_number"] == 13  # WARN: record 7 is logged at WARNING


def test_otel_exporter_with_a_wrong_key_is_refused_and_says_so(running: Running) -> None:
    from opentelemetry.sdk._logs.export import LogRecordExportResult

    wrong = "slk_" + "A" * 43
    logger, provider, exporter = otel_logger("sys.otel.wrong", f"{running.api}/v1/logs", wrong)
    send(logger, "otel-wrong", 3)
    provider.force_flush(30_000)
    provider.shutdown()
    assert exporter.results and set(exporter.results) == {LogRecordExportResult.FAILURE}


# --- OpenTelemetry SDK, OTLP/HTTP JSON (its own venv) --------------------------------------------

# opentelemetry-exporter-otlp-json-http 0.66b1 needs opentelemetry-exporter-http-transport and
# -otlp-common 0.66b1, where the protobuf exporter pinned in the dev extra needs 0.66b2.
JSON_EXPORTER = ("opentelemetry-exporter-otlp-json-http==0.66b1", "opentelemetry-sdk==1.45.2")
JSON_CLIENT = """
import logging, sys, warnings
from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource

endpoint, key, tag, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
inner = OTLPLogExporter(endpoint=endpoint, headers={"Authorization": "Bearer " + key}, timeout=60)
results = []

class Recording:
    def export(self, batch):
        result = inner.export(batch)
        results.append(result.name)
        return result
    def force_flush(self, timeout_millis=30000):
        return True
    def shutdown(self):
        inner.shutdown()

provider = LoggerProvider(resource=Resource.create({"service.name": "checkout"}))
provider.add_log_record_processor(BatchLogRecordProcessor(Recording(), max_export_batch_size=50,
                                                          schedule_delay_millis=200))
warnings.simplefilter("ignore", DeprecationWarning)
logger = logging.getLogger("sys.otel.json")
logger.handlers[:] = [LoggingHandler(level=logging.DEBUG, logger_provider=provider)]
logger.setLevel(logging.DEBUG)
logger.propagate = False
LEVELS = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL]
for i in range(n):
    logger.log(LEVELS[i % 5], message(tag, i), extra={"order_id": i})
provider.force_flush(60000)
provider.shutdown()
print("RESULTS=" + ",".join(sorted(set(results))))
"""


@pytest.fixture(scope="module")
def json_exporter_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the OTLP JSON exporter, whose pins conflict with the protobuf exporter's."""
    return client_venv(tmp_path_factory.mktemp("otlp-json"), JSON_EXPORTER)


def test_otel_sdk_json_exporter_stores_every_record_once(
    running: Running, json_exporter_python: Path
) -> None:
    start = time.time()
    script = inspect.getsource(message) + JSON_CLIENT
    out = subprocess.run(
        [str(json_exporter_python), "-c", script, f"{running.api}/v1/logs", running.keys["otel-json"],
         "otel-json", str(RECORDS)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    # THEN the exporter reported only successes, and logged no error
    assert "RESULTS=SUCCESS" in out.stdout.splitlines(), out.stdout[-1000:] + out.stderr[-2000:]
    assert "Failed to export" not in out.stderr
    found = stored(running.probe, "otel-json", "otel-json")
    check_stored(found, "otel-json", "otel-json", OTEL_LEVELS, start)
    record = found[7][0]
    assert record["source"]["protocol"] == "otlp"
    assert record["attributes"]["order_id"] == 7
    assert record["attributes"]["resource"]["service.name"] == "checkout"


def test_otel_exporter_retries_through_503s_and_stores_everything_once(running: Running) -> None:
    from opentelemetry.sdk._logs.export import LogRecordExportResult

    proxy = FaultProxy(running.api)
    url = proxy.start()
    try:
        start = time.time()
        logger, provider, exporter = otel_logger(
            "sys.otel.retry", f"{url}/v1/logs", running.keys["otel-retry"]
        )
        send(logger, "otel-retry")
        assert provider.force_flush(120_000)
        provider.shutdown()
    finally:
        proxy.stop()
    # THEN the exporter saw only successes, after the proxy refused and lost answers along the way
    assert exporter.results and set(exporter.results) == {LogRecordExportResult.SUCCESS}
    assert {"refused", "lost-answer", "forwarded"} <= set(proxy.seen)
    # AND a batch whose answer was lost and was sent again is stored once, not twice
    check_stored(
        stored(running.probe, "otel-retry", "otel-retry"), "otel-retry", "otel-retry", OTEL_LEVELS, start
    )


# --- python-logging-loki, the Loki push API (JSON) ----------------------------------------------


def loki_handler(url: str, key: str, failures: list[BaseException]) -> logging.Handler:
    import logging_loki

    handler = logging_loki.LokiHandler(url=url, tags={"app": "checkout"}, auth=("loki", key), version="1")

    # The handler turns the ValueError it raises on any status but 204 into handleError: keep it.
    def handle_error(record: logging.LogRecord) -> None:
        failures.append(sys.exc_info()[1] or RuntimeError("unknown"))

    handler.handleError = handle_error  # type: ignore[method-assign]
    return handler


def test_python_logging_loki_stores_every_record_once(running: Running) -> None:
    start = time.time()
    failures: list[BaseException] = []
    logger = fresh_logger(
        "sys.loki", loki_handler(f"{running.api}/loki/api/v1/push", running.keys["loki"], failures)
    )
    for i in range(RECORDS):
        logger.log(LEVELS[i % len(LEVELS)], message("loki", i), extra={"tags": {"order": str(i)}})
    assert failures == []
    found = stored(running.probe, "loki", "loki")
    check_stored(found, "loki", "loki", ["debug", "info", "warning", "error", "critical"], start)
    record = found[7][0]
    assert record["source"]["protocol"] == "loki"
    assert record["attributes"] == {
        "app": "checkout",
        "severity": "warning",
        "logger": "sys.loki",
        "order": "7",
    }


def test_python_logging_loki_with_a_wrong_key_fails_loudly(running: Running) -> None:
    failures: list[BaseException] = []
    wrong = "slk_" + "B" * 43
    logger = fresh_logger("sys.loki.wrong", loki_handler(f"{running.api}/loki/api/v1/push", wrong, failures))
    logger.error("rec-loki-wrong-0000 refused")
    assert len(failures) == 1
    assert "403" in str(failures[0])


# --- stdlib logging.handlers.HTTPHandler (a form per record) ------------------------------------


class RecordingHTTPHandler(logging.handlers.HTTPHandler):
    """stdlib's HTTPHandler, which reads each response and drops it: here its statuses are kept."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.statuses: list[int] = []

    def getConnection(self, host: str, secure: bool) -> Any:
        connection = super().getConnection(host, secure)
        getresponse = connection.getresponse

        def recording() -> Any:
            response = getresponse()
            self.statuses.append(response.status)
            return response

        connection.getresponse = recording
        return connection


def test_stdlib_http_handler_stores_every_record_once(running: Running) -> None:
    start = time.time()
    host = running.api.removeprefix("http://")
    handler = RecordingHTTPHandler(
        host, "/ingest", method="POST", credentials=("stdlib", running.keys["stdlib"])
    )
    logger = fresh_logger("sys.stdlib", handler)
    send(logger, "stdlib")
    assert handler.statuses == [202] * RECORDS
    found = stored(running.probe, "stdlib", "stdlib")
    check_stored(found, "stdlib", "stdlib", ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], start)
    record = found[7][0]
    assert record["source"]["protocol"] == "form"
    assert record["attributes"]["order_id"] == "7"
    assert record["attributes"]["name"] == "sys.stdlib"
    assert record["attributes"]["funcName"] == "send"
    assert isinstance(record["attributes"]["lineno"], int)


def test_stdlib_http_handler_with_a_wrong_key_is_refused(running: Running) -> None:
    host = running.api.removeprefix("http://")
    handler = RecordingHTTPHandler(host, "/ingest", method="POST", credentials=("stdlib", "slk_" + "C" * 43))
    fresh_logger("sys.stdlib.wrong", handler).error("rec-stdlib-wrong-0000 refused")
    assert handler.statuses == [403]
