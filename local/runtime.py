"""``make run``: the emulator, the resources, the HTTP API and the event sources, started and stopped together."""

from __future__ import annotations

import os
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import aws, wiring
from local import emulator as emu
from local import stack as stk
from local.chaos import ChaosProxy, ChaosRules
from local.http import LocalApiGateway
from local.sources import ContainerPool, KinesisEventSource, SqsEventSource


@dataclass
class RuntimeOptions:
    port: int = 8080
    host: str = "127.0.0.1"
    emulator_port: int = emu.DEFAULT_EMULATOR_PORT
    prefix: str = "sluice-local"
    worker_concurrency: int | None = None  # default: the wiring's maximum_concurrency
    visibility_timeout: int | None = None  # default: the wiring's (180 s); tests shorten it
    auth: bool = False
    api_concurrency: int = 16  # ingest environments, like a reserved concurrency for the ingest function
    verbose: bool = False
    state_dir: Path = Path(".local")
    extra_env: dict[str, str] = field(default_factory=dict)
    # Fault injection (local/chaos.py): when set, the handlers and event sources reach the emulator
    # through a ChaosProxy applying these rules; the stack itself is created directly.
    chaos: ChaosRules | None = None
    # Replace a function's handler by dotted path ("worker", "ingest", "authorizer", "archiver",
    # "rollup"): tests wrap the real handlers to crash them on purpose.
    handlers: dict[str, str] = field(default_factory=dict)


def reset_shared_caches() -> None:
    """Forget what modules shared by every environment cached from the process environment.

    Handler modules are loaded afresh for each environment (``ContainerPool``), so their own caches
    start empty; the modules they import are shared, and two of those cache environment-derived state.
    """
    from ingest import webhooks

    aws.client.cache_clear()
    webhooks.configured_sources.cache_clear()


class LocalRuntime:
    """The whole pipeline on one machine. Use as a context manager so everything stops on any exit."""

    def __init__(self, options: RuntimeOptions) -> None:
        self.options = options
        self.emulator: emu.Emulator | None = None
        self.stack: stk.Stack | None = None
        self.worker: SqsEventSource | None = None
        self.consumers: list[KinesisEventSource] = []
        self.gateway: LocalApiGateway | None = None
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        self.chaos: ChaosProxy | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.options.host}:{self.options.port}"

    def __enter__(self) -> LocalRuntime:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        o = self.options
        if not emu.port_is_free(o.port, o.host):
            raise emu.PortInUse(
                f"port {o.port} is already in use: is another `make run` running? Stop it, or choose another "
                f"port with PORT=... (make run PORT=8081)."
            )
        stk.use_fake_credentials()
        o.state_dir.mkdir(parents=True, exist_ok=True)
        self.emulator = emu.start(o.emulator_port, log_path=o.state_dir / "emulator.log")
        os.environ["AWS_ENDPOINT_URL"] = self.emulator.url
        self._configure_environment()
        aws.client.cache_clear()
        self.stack = stk.create(self.emulator.url, o.prefix, o.visibility_timeout)
        os.environ.update(self.stack.handler_env())
        if o.chaos is not None:
            self.chaos = ChaosProxy(self.emulator.url, o.chaos).start()
            os.environ["AWS_ENDPOINT_URL"] = self.chaos.url
        reset_shared_caches()
        w = wiring.load()
        handlers = {**w.handlers, **{c.name: c.handler for c in w.stream_consumers}, **o.handlers}
        concurrency = o.worker_concurrency or w.worker.maximum_concurrency
        self.worker = SqsEventSource(
            self.stack.queue_url, self.stack.queue_arn, ContainerPool(handlers["worker"], concurrency), w.worker,
            max_concurrency=concurrency,
        )  # fmt: skip
        self.consumers = [
            KinesisEventSource(self.stack.stream_name, self.stack.stream_arn, ContainerPool(handlers[c.name], 64),
                               c, self.stack.stream_failures_url)
            for c in w.stream_consumers
        ]  # fmt: skip
        # API Gateway calls the functions concurrently: a pool of environments per function, as many as
        # the gateway runs invocations at once.
        authorizer = ContainerPool(handlers["authorizer"], o.api_concurrency) if o.auth else None
        self.gateway = LocalApiGateway(ContainerPool(handlers["ingest"], o.api_concurrency), authorizer,
                                       concurrency=o.api_concurrency)  # fmt: skip
        self.worker.start()
        for consumer in self.consumers:
            consumer.start()
        self._start_http()
        self.stack = stk.Stack(**{**self.stack.__dict__, "api_url": self.api_url})
        self.stack.save(o.state_dir / "stack.json")

    def _configure_environment(self) -> None:
        o = self.options
        # Powertools warns on every invocation without metrics; harmless in Lambda, noise here.
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        defaults = {
            "POWERTOOLS_SERVICE_NAME": "sluice-local",
            "POWERTOOLS_METRICS_NAMESPACE": "sluice-local",
            # EMF lines and per-request logs are what CloudWatch would get; locally they drown the
            # terminal, so they are off unless --verbose.
            "POWERTOOLS_METRICS_DISABLED": "false" if o.verbose else "true",
            "POWERTOOLS_LOG_LEVEL": "INFO" if o.verbose else "WARNING",
            "AUTH_MODE": "api_key" if o.auth else "none",
        }
        for key, value in {**defaults, **o.extra_env}.items():
            os.environ[key] = value

    def _start_http(self) -> None:
        import uvicorn

        config = uvicorn.Config(
            self.gateway,  # type: ignore[arg-type]
            host=self.options.host, port=self.options.port, log_level="warning",
            access_log=self.options.verbose, lifespan="on", timeout_keep_alive=30,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # the CLI owns Ctrl-C
        self._server_thread = threading.Thread(target=self._server.run, name="http", daemon=True)
        self._server_thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._server_thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the HTTP server did not start on {self.api_url}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            if self._server_thread is not None:
                self._server_thread.join(10)
            self._server = None
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        for consumer in self.consumers:
            consumer.stop()
        self.consumers = []
        if self.chaos is not None:
            self.chaos.stop()
            self.chaos = None
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None

    def stats(self) -> dict[str, Any]:
        return {
            "http_requests": self.gateway.requests if self.gateway else 0,
            "worker": self.worker.stats.snapshot() if self.worker else {},
            **{f"consumer:{c.cfg.name}": c.stats.snapshot() for c in self.consumers},
        }
