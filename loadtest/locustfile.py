# Locust ships without type hints: its decorators and base-class methods are untyped.
# mypy: disable-error-code="untyped-decorator,no-untyped-call"
"""Producers for the sluice HTTP API: analytics and telemetry events, webhooks and log lines.

``python -m loadtest.run`` runs this headless against a stack and measures what landed. Every response
is checked: 202 and a receipt whose ``accepted`` equals the records sent. Accepted ids are counted per
tenant and a sample is written to ``--out-dir`` for the driver's stored counts and lag. A ``quitting``
listener turns missed thresholds (error rate, p95 latency) into a non-zero exit code. No boto3 here:
Locust monkey-patches the process with gevent on import, and AWS reads belong to the driver.
"""

from __future__ import annotations

import csv
import logging
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from locust import FastHttpUser, LoadTestShape, constant_throughput, events, task
from locust.runners import WorkerRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, however locust is run

from loadtest import generators as gen
from loadtest import shapes
from loadtest.measures import threshold_failures

log = logging.getLogger("sluice.loadtest")


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    g = parser.add_argument_group("sluice")
    g.add_argument("--shape", choices=shapes.SHAPES, default="steady", env_var="SLUICE_SHAPE",
                   help="steady: -u users for -t; step: up to -u users over -t; burst: baseline, -u spike, repeated")  # fmt: skip
    g.add_argument("--spike-factor", type=float, default=15.0, help="burst: spike users / baseline users")
    g.add_argument("--baseline-seconds", type=float, default=20.0, help="burst: length of a quiet phase")
    g.add_argument("--spike-seconds", type=float, default=10.0, help="burst: length of a spike")
    g.add_argument("--cycles", type=int, default=2, help="burst: number of spikes")
    g.add_argument("--steps", type=int, default=5, help="step: number of steps up to -u users")
    g.add_argument("--rps-per-user", type=float, default=2.0, help="requests per second each user sends")
    g.add_argument("--batch-size", type=int, default=25, help="records per batch request")
    g.add_argument("--log-lines", type=int, default=50, help="lines per log request")
    g.add_argument("--event-bytes", type=int, default=gen.DEFAULT_EVENT_BYTES, help="size of one event")
    g.add_argument("--tenants", type=int, default=8, help="tenants of the run (Zipf-skewed shares)")
    g.add_argument("--zipf", type=float, default=1.1, help="skew exponent of the tenant shares")
    g.add_argument("--run-id", default="", env_var="SLUICE_RUN_ID", help="prefix of this run's tenant ids")
    g.add_argument("--api-keys-file", default="", env_var="SLUICE_API_KEYS_FILE",
                   help='JSON {"tenant": "api key"}: send Authorization: Bearer per tenant (auth on)')  # fmt: skip
    g.add_argument("--sample-every", type=int, default=20, help="record one accepted id per N requests")
    g.add_argument("--out-dir", default="", env_var="SLUICE_OUT_DIR", help="where receipts and samples go")
    g.add_argument("--max-error-rate", type=float, default=0.01, help="threshold: failed requests / all")
    g.add_argument("--max-p95-ms", type=float, default=2000.0, help="threshold: p95 response time (ms)")


class Recorder:
    """What this process saw accepted: totals per tenant and a sample of ids, written at the end."""

    def __init__(self) -> None:
        self.accepted: Counter[str] = Counter()
        self.samples: list[tuple[str, str, float]] = []
        self.requests = 0

    def write(self, out_dir: str, run_id: str) -> None:
        if not out_dir:
            return
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        (out / f"accepted-{pid}.json").write_bytes(
            orjson.dumps({"run_id": run_id, "requests": self.requests, "tenants": dict(self.accepted)})
        )
        with open(out / f"samples-{pid}.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["tenant_id", "event_id", "sent_at"])
            writer.writerows(self.samples)


recorder = Recorder()
_run: dict[str, Any] = {}


def _setup(environment: Any) -> dict[str, Any]:
    """Per-process settings derived from the options, built once."""
    if _run:
        return _run
    opts = environment.parsed_options
    run_id = opts.run_id or gen.new_run_id()
    keys: dict[str, str] = {}
    if opts.api_keys_file:
        keys = orjson.loads(Path(opts.api_keys_file).read_bytes())
        mix = gen.TenantMix(tuple(keys), tuple(gen.zipf_weights(len(keys), opts.zipf)))
    else:
        mix = gen.TenantMix.for_run(run_id, opts.tenants, opts.zipf)
    _run.update(run_id=run_id, mix=mix, keys=keys, corpus=gen.Corpus.load(), opts=opts)
    return _run


@events.test_start.add_listener
def _on_start(environment: Any, **_: Any) -> None:
    run = _setup(environment)
    if not isinstance(environment.runner, WorkerRunner):
        source = "corpus + synthetic" if run["corpus"].webhooks else "synthetic"
        log.info("run %s: tenants %s, bodies %s", run["run_id"], ", ".join(run["mix"].tenants), source)


@events.test_stop.add_listener
def _on_stop(environment: Any, **_: Any) -> None:
    recorder.write(environment.parsed_options.out_dir, _run.get("run_id", ""))


class Producer(FastHttpUser):
    """One producer: a mix of what real clients send, each request checked against its receipt."""

    network_timeout = 30.0  # API Gateway's own integration limit is 29 s
    connection_timeout = 10.0

    def on_start(self) -> None:
        run = _setup(self.environment)
        self.opts = run["opts"]
        self.mix: gen.TenantMix = run["mix"]
        self.keys: dict[str, str] = run["keys"]
        self.rng = random.Random()
        self.bodies = gen.BodyFactory(run["corpus"], self.rng, self.opts.event_bytes)
        self._pace = constant_throughput(self.opts.rps_per_user)

    def wait_time(self) -> float:
        return float(self._pace(self))

    def _send(self, path: str, name: str, body: gen.Body) -> None:
        tenant = self.mix.pick(self.rng)
        headers = dict(body.headers)
        if self.keys:
            headers["Authorization"] = f"Bearer {self.keys[tenant]}"
        else:
            headers["X-Tenant-Id"] = tenant
        with self.rest("POST", path, data=body.data, headers=headers, name=name) as resp:
            recorder.requests += 1
            if resp.status_code != 202:
                resp.failure(f"HTTP {resp.status_code}: {(resp.text or '')[:200]}")
                return
            receipt = resp.js or {}
            ids = receipt.get("event_ids") or []
            # Whatever the receipt says was accepted must be stored, even when the count is wrong.
            recorder.accepted[tenant] += len(set(ids))
            if ids and self.rng.random() * self.opts.sample_every < 1:
                recorder.samples.append((tenant, self.rng.choice(ids), time.time()))
            assert receipt.get("accepted") == body.records, (
                f"accepted {receipt.get('accepted')} of {body.records} records sent "
                f"(errors: {receipt.get('errors', [])[:3]}),"
            )
            assert len(ids) == body.records, f"{len(ids)} event ids for {body.records} records,"

    @task(4)
    def single_event(self) -> None:
        self._send("/events", "POST /events [1 event]", self.bodies.single_event())

    @task(1)
    def webhook(self) -> None:
        self._send("/events", "POST /events [webhook]", self.bodies.webhook())

    @task(2)
    def event_batch(self) -> None:
        n = self.opts.batch_size
        self._send("/events", f"POST /events [{n} events]", self.bodies.event_batch(n))

    @task(1)
    def gzip_batch(self) -> None:
        n = self.opts.batch_size
        self._send("/events", f"POST /events [{n} events, gzip]", gen.gzip_body(self.bodies.event_batch(n)))

    @task(2)
    def text_logs(self) -> None:
        n = self.opts.log_lines
        self._send("/ingest", f"POST /ingest [{n} lines]", self.bodies.text_logs(n))

    @task(1)
    def ndjson_logs(self) -> None:
        n = self.opts.log_lines
        self._send("/ingest", f"POST /ingest [{n} ndjson, gzip]", gen.gzip_body(self.bodies.ndjson_logs(n)))


class SelectedShape(LoadTestShape):
    """The schedule named by ``--shape`` (see loadtest/shapes.py); -u, -r and -t feed it."""

    use_common_options = True

    def __init__(self) -> None:
        super().__init__()
        self.schedule: shapes.Schedule | None = None
        self._phase: int | None = None

    def tick(self) -> tuple[int, float] | None:
        if self.schedule is None:
            assert self.runner is not None
            o: Any = self.runner.environment.parsed_options
            self.schedule = shapes.build(
                o.shape, o.num_users or 1, o.spawn_rate or float(o.num_users or 1), o.run_time or 60,
                spike_factor=o.spike_factor, baseline_seconds=o.baseline_seconds,
                spike_seconds=o.spike_seconds, cycles=o.cycles, steps=o.steps,
            )  # fmt: skip
            self.reset_time()
        run_time = self.get_run_time()
        found = self.schedule.phase_at(run_time)
        if found is not None and found[0] != self._phase:
            self._phase = found[0]
            self._record_phase(found[1])
        return self.schedule.tick(run_time)

    def _record_phase(self, phase: shapes.Phase) -> None:
        assert self.runner is not None
        options: Any = self.runner.environment.parsed_options
        out_dir = options.out_dir
        if not out_dir:
            return
        path = Path(out_dir) / "phases.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        with open(path, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["started_at", "phase", "users", "seconds"])
            writer.writerow([f"{time.time():.3f}", phase.name, phase.users, phase.seconds])


@events.quitting.add_listener
def _thresholds(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    opts = environment.parsed_options
    total = environment.stats.total
    p95 = total.get_response_time_percentile(0.95) if total.num_requests else None
    reasons = threshold_failures(
        total.num_requests, total.num_failures, p95, opts.max_error_rate, opts.max_p95_ms
    )
    if environment.runner is not None and environment.runner.exceptions:
        reasons.append(f"{len(environment.runner.exceptions)} unhandled exception(s) in the locustfile")
    if opts.out_dir:
        Path(opts.out_dir, "thresholds.json").write_bytes(orjson.dumps({
            "requests": total.num_requests, "failures": total.num_failures, "p95_ms": p95,
            "max_error_rate": opts.max_error_rate, "max_p95_ms": opts.max_p95_ms, "failed": reasons,
        }))  # fmt: skip
    if reasons:
        log.error("thresholds missed: %s", "; ".join(reasons))
        environment.process_exit_code = 1
    else:
        # Met: a few tolerated failures must not turn into Locust's default exit code 1.
        environment.process_exit_code = 0
        log.info("thresholds met (%d requests, p95 %s ms)", total.num_requests, p95)
