"""``python -m loadtest.run``: the one load driver. A stack, load on it, and what the load did to it.

Target: without ``--host``, a local stack on free ports (``local.process.StackProcess``), stopped on
every exit, Ctrl-C included; with ``--host https://...``, a deployment (``--queue-url``, ``--dlq-url``
and ``--table``, the Terraform outputs, turn on the measures). Load: headless Locust with a shape, or
``--post RECORDS`` plain HTTP posts of ``--batch`` events each (how ``make bench`` drives its end-to-end
runs). Measures (``local.inspect.StackInspector``): queue backlog and DLQ every second, drain time,
accepted against stored records per tenant of this run, end-to-end lag of a sample of records.

Exit code: 0 when the thresholds hold and nothing was lost or dead-lettered; 1 otherwise.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from loadtest import generators as gen
from loadtest import measures, shapes
from local.inspect import Backlog, StackInspector, count_by_tenant
from local.process import REPO, StackProcess
from local.stack import Stack

DEFAULT_OUT = REPO / "loadtest" / "out"


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


@dataclass(frozen=True)
class PostBody:
    """One request of the direct driver: a body for ``route`` with its content type."""

    data: bytes
    route: str = "/events"
    content_type: str = "application/json"


@dataclass
class RunOptions:
    """One load run. The defaults are the full local run; ``smoke()`` is the CI variant."""

    host: str | None = None
    shape: str = "burst"
    users: int = 30
    spawn_rate: float | None = None
    run_time: int = 60
    rps_per_user: float = 2.0
    spike_factor: float = 15.0
    baseline_seconds: float = 20.0
    spike_seconds: float = 10.0
    cycles: int = 2
    tenants: int = 8
    sample_every: int = 20
    max_error_rate: float = 0.01
    max_p95_ms: float = 2000.0
    drain_timeout: float = 180.0
    out: Path | None = None
    worker_concurrency: int | None = None
    # Local stacks only. The wiring's value is right for AWS; locally, messages the overloaded emulator
    # strands in flight (see docs/loadtest.md) would then hold up every run for that long. This one is
    # still above the worker's function timeout, as SQS requires.
    visibility_timeout: int | None = 45
    stack_env: dict[str, str] = field(default_factory=dict)
    stack_args: list[str] = field(default_factory=list)  # added to ``python -m local run``
    queue_url: str | None = None
    dlq_url: str | None = None
    table: str | None = None
    region: str | None = None
    endpoint_url: str | None = None  # a HOST whose AWS side is an emulator (the bench's own stack)
    api_keys_file: str | None = None
    locust_args: list[str] = field(default_factory=list)
    # Direct driver, instead of Locust: these bodies (bare bytes are JSON for /events).
    post: Sequence[bytes | PostBody] | None = None
    post_concurrency: int = 4
    # The direct driver counts what was stored with a COUNT query every 0.25 s. On the emulator each one
    # copies every item of the tenant it reads: at tens of thousands of items the measure would slow what
    # it measures. In-process callers pass a cheap sign (the worker's own counters) that the records are
    # all stored; the COUNT queries start once it holds, and when the first finds every record the time
    # the sign held is the time stored.
    stored_hint: Callable[[], bool] | None = None
    quiet: bool = False

    @classmethod
    def smoke(cls) -> RunOptions:
        # Correctness strict (no failed request, nothing lost); latency generous: CI runs this on a
        # loaded machine where a request p95 says nothing about the code.
        return cls(shape="steady", users=3, spawn_rate=3, run_time=10, rps_per_user=2.0, tenants=3,
                   sample_every=1, max_error_rate=0.0, max_p95_ms=15000.0, drain_timeout=60.0)  # fmt: skip

    def schedule(self) -> shapes.Schedule:
        return shapes.build(self.shape, self.users, self.spawn_rate or self.users, self.run_time,
                            spike_factor=self.spike_factor, baseline_seconds=self.baseline_seconds,
                            spike_seconds=self.spike_seconds, cycles=self.cycles)  # fmt: skip


class BacklogSampler(threading.Thread):
    """Queue backlog and DLQ depth once a second, kept in memory and appended to ``backlog.csv``."""

    def __init__(self, probe: StackInspector, path: Path, interval: float = 1.0) -> None:
        super().__init__(name="backlog-sampler", daemon=True)
        self.probe, self.path, self.interval = probe, path, interval
        self.samples: list[tuple[float, Backlog]] = []
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        with open(self.path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["time", "visible", "in_flight", "backlog", "dlq"])
            while not self._stop_event.is_set():
                started = time.time()
                try:
                    b = self.probe.backlog()
                except Exception:  # a slow or failed read is a gap in the series, not the end of the run
                    pass
                else:
                    with self._lock:
                        self.samples.append((started, b))
                    writer.writerow([f"{started:.3f}", b.visible, b.in_flight, b.total, b.dlq])
                    f.flush()
                self._stop_event.wait(max(0.0, self.interval - (time.time() - started)))

    def series(self) -> list[tuple[float, int]]:
        return [(t, b.total) for t, b in self.copy()]

    def detail(self) -> list[tuple[float, int, int]]:
        return [(t, b.visible, b.in_flight) for t, b in self.copy()]

    def latest(self) -> Backlog | None:
        samples = self.copy()
        return samples[-1][1] if samples else None

    def copy(self) -> list[tuple[float, Backlog]]:
        with self._lock:
            return list(self.samples)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)


@dataclass
class RunResult:
    out: Path
    run_id: str
    exit_code: int
    summary: dict[str, Any]
    backlog: list[tuple[float, int]]
    load_started: float
    load_ended: float


def locust_command(o: RunOptions, host: str, out: Path, run_id: str) -> list[str]:
    cmd = [sys.executable, "-m", "locust", "-f", str(REPO / "loadtest" / "locustfile.py"), "--headless",
           "--host", host, "-u", str(o.users), "-r", str(o.spawn_rate or o.users), "-t", f"{o.run_time}s",
           "--csv", str(out / "locust"), "--html", str(out / "report.html"), "--only-summary",
           "--shape", o.shape, "--spike-factor", str(o.spike_factor),
           "--baseline-seconds", str(o.baseline_seconds), "--spike-seconds", str(o.spike_seconds),
           "--cycles", str(o.cycles), "--rps-per-user", str(o.rps_per_user), "--tenants", str(o.tenants),
           "--sample-every", str(o.sample_every),
           "--run-id", run_id, "--out-dir", str(out), "--max-error-rate", str(o.max_error_rate),
           "--max-p95-ms", str(o.max_p95_ms), "--stop-timeout", "30"]  # fmt: skip
    if o.shape != "steady":
        # The schedule sets the duration; a -t shorter than it would cut the last phase off.
        i = cmd.index("-t")
        del cmd[i : i + 2]
    if o.api_keys_file:
        cmd += ["--api-keys-file", o.api_keys_file]
    return cmd + o.locust_args


def read_receipts(out: Path) -> tuple[Counter[str], int, list[tuple[str, str]]]:
    """Accepted records per tenant, requests, and sampled (tenant, event_id) from every load process."""
    accepted: Counter[str] = Counter()
    requests = 0
    for path in sorted(out.glob("accepted-*.json")):
        doc = orjson.loads(path.read_bytes())
        accepted.update(doc["tenants"])
        requests += doc["requests"]
    samples: list[tuple[str, str]] = []
    for path in sorted(out.glob("samples-*.csv")):
        with open(path, newline="") as f:
            samples += [(row["tenant_id"], row["event_id"]) for row in csv.DictReader(f)]
    return accepted, requests, samples


def read_phases(out: Path) -> list[tuple[float, str]]:
    path = out / "phases.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [(float(row["started_at"]), row["phase"]) for row in csv.DictReader(f)]


def last_spike_end(phases: list[tuple[float, str]], load_ended: float) -> float | None:
    """When the last spike phase gave way to the next phase (or the load ended)."""
    end = None
    for i, (_, name) in enumerate(phases):
        if name == "spike":
            end = phases[i + 1][0] if i + 1 < len(phases) else load_ended
    return end


def wait_for_drain(sampler: BacklogSampler, timeout: float) -> bool:
    """Until the queue is empty on two samples in a row (the worker is done), or ``timeout``."""
    deadline = time.monotonic() + timeout
    empty_in_a_row, seen = 0, len(sampler.samples)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if len(sampler.samples) == seen:
            continue
        seen = len(sampler.samples)
        latest = sampler.latest()
        empty_in_a_row = empty_in_a_row + 1 if latest is not None and latest.total == 0 else 0
        if empty_in_a_row >= 2:
            return True
    return False


class KeepAliveClient:
    """POSTs to one API over one keep-alive connection per calling thread, reopened after a failure."""

    def __init__(self, host: str, timeout: float = 60) -> None:
        self.url = urllib.parse.urlsplit(host)
        self.timeout = timeout
        self._connection = (
            http.client.HTTPSConnection if self.url.scheme == "https" else http.client.HTTPConnection
        )
        self._local = threading.local()

    def post(self, item: bytes | PostBody, headers: dict[str, str]) -> tuple[int, bytes]:
        """One POST: (status, reply). A bare ``bytes`` body goes to /events as JSON."""
        status, _, reply = self.exchange(item, headers)
        return status, reply

    def exchange(self, item: bytes | PostBody, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """One POST: (status, response headers with lower-case names, reply)."""
        body = item if isinstance(item, PostBody) else PostBody(item)
        if getattr(self._local, "conn", None) is None:
            self._local.conn = self._connection(self.url.netloc, timeout=self.timeout)
        try:
            self._local.conn.request("POST", self.url.path.rstrip("/") + body.route, body=body.data,
                                     headers={**headers, "content-type": body.content_type})  # fmt: skip
            response = self._local.conn.getresponse()
            reply = response.read()
        except (OSError, http.client.HTTPException):
            self._local.conn.close()
            self._local.conn = None
            raise
        return int(response.status), {k.lower(): v for k, v in response.getheaders()}, reply


def post_bodies(
    host: str, bodies: Sequence[bytes | PostBody], headers: dict[str, str], concurrency: int
) -> list[tuple[int, bytes]]:
    """POST every body to ``host`` over ``concurrency`` keep-alive connections: (status, reply).

    A bare ``bytes`` body goes to /events as JSON; a ``PostBody`` names its route and content type.
    """
    client = KeepAliveClient(host)
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda body: client.post(body, headers), bodies))


def drive_directly(o: RunOptions, host: str, out: Path, run_id: str) -> tuple[int, str]:
    """The direct driver: ``o.post`` to /events as one tenant, receipts written as Locust's are.

    Returns the exit code of the thresholds (error rate; latency is not measured) and the tenant.
    """
    assert o.post is not None
    tenant = gen.run_tenants(run_id, 1)[0]
    headers = {"content-type": "application/json", "x-tenant-id": tenant}
    replies = post_bodies(host, o.post, headers, o.post_concurrency)
    receipts = [orjson.loads(reply) if status == 202 else {} for status, reply in replies]
    accepted = sum(r.get("accepted", 0) for r in receipts)
    (out / "accepted-direct.json").write_bytes(
        orjson.dumps({"requests": len(replies), "tenants": {tenant: accepted}})
    )
    with open(out / "samples-direct.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["tenant_id", "event_id"])
        writer.writerows((tenant, r["event_ids"][0]) for i, r in enumerate(receipts)
                         if r.get("event_ids") and i % o.sample_every == 0)  # fmt: skip
    failures = sum(1 for status, _ in replies if status != 202)
    failed = measures.threshold_failures(len(replies), failures, None, o.max_error_rate, o.max_p95_ms)
    (out / "thresholds.json").write_bytes(orjson.dumps({"requests": len(replies), "failures": failures,
                                                         "p95_ms": None, "failed": failed}))  # fmt: skip
    return (1 if failed else 0), tenant


def wait_stored(
    probe: StackInspector, tenant: str, records: int, timeout: float, every: float = 0.25
) -> bool:
    """Until ``records`` items of ``tenant`` are in the table, or ``timeout``."""
    deadline = time.monotonic() + timeout
    while probe.count_stored(tenant) < records:
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


def drive_locust(o: RunOptions, host: str, out: Path, run_id: str, report: Any) -> int:
    cmd = locust_command(o, host, out, run_id)
    (out / "command.txt").write_text(" ".join(cmd) + "\n")
    budget = o.schedule().duration + 90
    report(f"running locust ({o.shape}, peak {o.users} users, ~{o.schedule().duration:.0f}s) -> {out}")
    with open(out / "locust.log", "wb") as log:
        locust = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                                  stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            return locust.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            report(f"locust ran past its budget of {budget:.0f}s and was stopped")
            locust.terminate()
            return locust.wait(timeout=30)
        finally:
            if locust.poll() is None:  # interrupted, or deaf to terminate
                locust.terminate()
                try:
                    locust.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    locust.kill()


def start_local_stack(o: RunOptions, cleanup: ExitStack, report: Any) -> tuple[Stack, StackProcess]:
    """A local stack on free ports with ``o``'s settings (and its process), stopped when ``cleanup`` closes."""
    state_dir = Path(tempfile.mkdtemp(prefix="sluice-loadtest-"))
    process = cleanup.enter_context(StackProcess(state_dir, o.worker_concurrency, o.stack_env,
                                                 o.visibility_timeout, run_args=o.stack_args))  # fmt: skip
    t0 = time.monotonic()
    report(f"starting a local stack (state in {state_dir}) ...")
    stack = process.start()
    report(f"  up in {time.monotonic() - t0:.1f}s at {stack.api_url}")
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    return stack, process


def _target(o: RunOptions, cleanup: ExitStack, report: Any) -> tuple[str, StackInspector | None]:
    """The API to load and the inspector of its AWS side: a local stack started here, or ``o.host``."""
    if o.host is not None:
        probe = None
        if o.queue_url or o.table:
            probe = StackInspector(
                o.queue_url, o.dlq_url, o.table, endpoint_url=o.endpoint_url, region=o.region
            )
        return o.host.rstrip("/"), probe
    stack, _ = start_local_stack(o, cleanup, report)
    return stack.api_url, StackInspector(stack.queue_url, stack.dlq_url, stack.table_name,
                                         endpoint_url=stack.endpoint_url, region=stack.region)  # fmt: skip


def execute(o: RunOptions) -> RunResult:
    """One run end to end; the local stack (if any) is stopped before this returns or raises."""
    out = o.out or DEFAULT_OUT / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    run_id = gen.new_run_id()
    report = (lambda _t: None) if o.quiet else say
    with ExitStack() as cleanup:
        host, probe = _target(o, cleanup, report)
        sampler = None
        if probe is not None and probe.queue_url:
            sampler = BacklogSampler(probe, out / "backlog.csv")
            sampler.start()
            cleanup.callback(sampler.stop)
        extra: dict[str, Any] = {}
        load_started = time.time()
        if o.post is None:
            code = drive_locust(o, host, out, run_id, report)
            load_ended = time.time()
        else:
            code, tenant = drive_directly(o, host, out, run_id)
            load_ended = time.time()
            if probe is not None and probe.ddb is not None:
                accepted = sum(read_receipts(out)[0].values())
                deadline = time.monotonic() + o.drain_timeout
                while o.stored_hint is not None and not o.stored_hint() and time.monotonic() < deadline:
                    time.sleep(0.05)
                hinted = time.time()
                if o.stored_hint is not None and o.stored_hint() and probe.count_stored(tenant) >= accepted:
                    # Every write had returned when the hint held; the COUNT only confirms it, and its own
                    # time (it copies the tenant's items on the emulator) is the measure's, not the pipeline's.
                    extra["all_stored"], stored_at = True, hinted
                else:
                    extra["all_stored"] = wait_stored(probe, tenant, accepted, deadline - time.monotonic())
                    stored_at = time.time()
                extra["stored_after_s"] = stored_at - load_started
                extra["stored_per_second"] = accepted / extra["stored_after_s"]
        drained = None
        if sampler is not None:
            report("load finished; waiting for the queue to drain ...")
            drained = wait_for_drain(sampler, o.drain_timeout)
        summary = _measure(o, out, run_id, probe, sampler, load_started, load_ended, code, drained, extra)
        series = sampler.series() if sampler else []
        return RunResult(out, run_id, summary["exit_code"], summary, series, load_started, load_ended)


def _measure(o: RunOptions, out: Path, run_id: str, probe: StackInspector | None,
             sampler: BacklogSampler | None, load_started: float, load_ended: float, locust_code: int,
             drained: bool | None, extra: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    accepted, requests, samples = read_receipts(out)
    path = out / "thresholds.json"
    stats = orjson.loads(path.read_bytes()) if path.exists() else {}
    phases = read_phases(out)
    if phases:
        load_started = phases[0][0]
    load_seconds = max(1e-9, load_ended - load_started)
    total_accepted = sum(accepted.values())
    summary: dict[str, Any] = {
        "run_id": run_id,
        "shape": o.shape if o.post is None else "direct",
        "peak_users": o.users if o.post is None else o.post_concurrency,
        "load_seconds": round(load_seconds, 1),
        "requests": stats.get("requests", requests),
        "failed_requests": stats.get("failures"),
        "request_p95_ms": stats.get("p95_ms"),
        "records_accepted": total_accepted,
        "accepted_per_second": round(total_accepted / load_seconds, 1),
        "tenants": dict(accepted.most_common()),
        "threshold_failures": stats.get("failed", ["locust wrote no thresholds.json"]),
        "locust_exit_code": locust_code,
        **extra,
    }
    failures: list[str] = []
    if locust_code != 0:
        failures += summary["threshold_failures"] or [f"locust exited with {locust_code}"]
    if sampler is not None:
        series = sampler.series()
        summary["drained"] = drained
        summary["peak_backlog"] = measures.peak(series)
        summary["stalled_in_flight"] = measures.stalled_in_flight(sampler.detail())
        empty = measures.drain_time(series, load_ended, 0)
        summary["empty_after_load_s"] = None if empty is None else round(empty, 1)
        spike_end = last_spike_end(phases, load_ended)
        if spike_end is not None:
            # Drained = back to the backlog the baseline keeps before the first spike.
            first_spike = next(t for t, name in phases if name == "spike")
            level = measures.level_before(series, phases[0][0] + 5, first_spike)
            d = measures.drain_time(series, spike_end, level)
            summary["baseline_backlog"] = level
            summary["drain_after_last_spike_s"] = None if d is None else round(d, 1)
            summary["drain_rate_msgs_per_s"] = _drain_rate(series, spike_end, level)
        if not drained:
            last = sampler.latest()
            left = f" ({last.visible} waiting, {last.in_flight} in flight)" if last else ""
            failures.append(f"the queue did not drain within {o.drain_timeout:.0f}s{left}")
    if probe is not None and probe.ddb is not None:
        loss = measures.losses(accepted, count_by_tenant(probe, sorted(accepted)))
        summary.update(records_stored=loss.stored, lost_records=loss.lost, unacknowledged_extra=loss.extra,
                       lost_by_tenant=loss.lost_by_tenant)  # fmt: skip
        if loss.lost:
            failures.append(f"{loss.lost} accepted record(s) were not stored: {loss.lost_by_tenant}")
        summary.update(_lag(probe, samples, out / "lag.csv"))
    if sampler is not None and probe is not None and probe.dlq_url:
        final = probe.backlog()
        summary["dlq_depth"] = final.dlq
        if final.dlq:
            failures.append(f"{final.dlq} message(s) in the DLQ")
    summary["failures"] = failures
    summary["exit_code"] = 1 if failures else 0
    (out / "summary.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    return summary


def _lag(probe: StackInspector, samples: list[tuple[str, str]], path: Path) -> dict[str, Any]:
    """End-to-end lag (``received_at`` -> ``stored_at``) of the sampled records, also written to ``path``."""
    stamps = probe.timestamps(samples)
    lags = []
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["tenant_id", "event_id", "received_at", "stored_at", "lag_s"])
        for key in samples:
            received, stored = stamps.get(key, (None, None))
            if received is None or stored is None:
                writer.writerow([*key, "", "", ""])
                continue
            lags.append(measures.lag_seconds(received, stored))
            writer.writerow([*key, received, stored, f"{lags[-1]:.4f}"])
    lag = measures.LagSummary.of(lags)
    found = {"lag_samples": lag.samples, "lag_samples_missing": len(set(samples)) - len(stamps)}
    for name in ("p50", "p95", "p99", "max"):
        value = getattr(lag, name)
        found[f"lag_{name}_s"] = None if value is None else round(value, 3)
    return found


def _drain_rate(series: list[tuple[float, int]], after: float, level: int) -> float | None:
    """Net messages per second the workers removed between the post-spike peak and the drained level."""
    window = [(t, v) for t, v in series if t >= after - 1]
    if not window:
        return None
    t_peak, v_peak = max(window, key=lambda s: s[1])
    done = measures.drain_time(series, t_peak, level)
    if not done or v_peak <= level:
        return None
    return round((v_peak - level) / done, 1)


ROWS = (
    ("requests", "requests sent"), ("failed_requests", "failed requests"), ("request_p95_ms", "request p95 (ms)"),
    ("records_accepted", "records accepted"), ("accepted_per_second", "accepted records / s"),
    ("stored_per_second", "stored records / s (POST -> table)"), ("peak_backlog", "peak queue backlog"),
    ("drain_after_last_spike_s", "drain after last spike (s)"), ("empty_after_load_s", "queue empty after load (s)"),
    ("lag_p50_s", "lag p50 (s)"), ("lag_p95_s", "lag p95 (s)"), ("lag_p99_s", "lag p99 (s)"),
    ("lag_samples", "lag samples"), ("stalled_in_flight", "stuck in flight (msgs)"),
    ("records_stored", "records stored"), ("lost_records", "LOST records"), ("dlq_depth", "DLQ depth"),
)  # fmt: skip


def print_summary(result: RunResult) -> None:
    s = result.summary
    say("\n" + measures.table([(label, s[key]) for key, label in ROWS if key in s], ("measure", "value")))
    verdict = "PASS" if result.exit_code == 0 else "FAIL: " + "; ".join(s["failures"])
    say(f"\n{verdict}\nresults: {result.out}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtest.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--host", help="a deployed API (https://...); default: start a local stack")
    p.add_argument("--smoke", action="store_true", help="a few seconds with 3 users: the CI check")
    p.add_argument(
        "--post", type=int, metavar="RECORDS", help="direct driver: POST this many events, no Locust"
    )
    p.add_argument("--batch", type=int, default=1, help="direct driver: events per request")
    p.add_argument("--shape", choices=shapes.SHAPES, help="load shape (default: burst; smoke: steady)")
    p.add_argument("-u", "--users", type=int, help="peak users (burst: the spike)")
    p.add_argument("-r", "--spawn-rate", type=float, help="users started per second (default: all at once)")
    p.add_argument("-t", "--run-time", type=int, help="seconds (steady and step)")
    p.add_argument("--rps-per-user", type=float, help="requests per second per user")
    p.add_argument("--spike-factor", type=float)
    p.add_argument("--baseline-seconds", type=float)
    p.add_argument("--spike-seconds", type=float)
    p.add_argument("--cycles", type=int)
    p.add_argument("--tenants", type=int)
    p.add_argument("--max-error-rate", type=float, help="threshold, e.g. 0.01")
    p.add_argument("--max-p95-ms", type=float, help="threshold on request latency")
    p.add_argument("--drain-timeout", type=float, help="seconds to wait for the queue to empty")
    p.add_argument("--worker-concurrency", type=int, help="local stack: worker maximum concurrency")
    p.add_argument("--visibility-timeout", type=int, help="local stack: queue visibility timeout (s)")
    p.add_argument("--simulated-cost-ms-per-kchar", type=float,
                   help="local stack: per-record worker cost (SIMULATED_COST_MS_PER_KCHAR)")  # fmt: skip
    p.add_argument("--out", type=Path, help="output folder (default: loadtest/out/<timestamp>)")
    p.add_argument("--queue-url", help="deployment: the events queue URL (terraform output)")
    p.add_argument("--dlq-url", help="deployment: the dead-letter queue URL")
    p.add_argument("--table", help="deployment: the events table name")
    p.add_argument("--region", help="deployment: AWS region (default: your AWS config)")
    p.add_argument("--api-keys-file", help='deployment with auth: JSON {"tenant": "key"}')
    p.add_argument("locust_args", nargs=argparse.REMAINDER, help="after --: passed to locust as they are")
    return p


def options_from_args(args: argparse.Namespace) -> RunOptions:
    o = RunOptions.smoke() if args.smoke else RunOptions()
    for name in ("host", "shape", "users", "spawn_rate", "run_time", "rps_per_user", "spike_factor",
                 "baseline_seconds", "spike_seconds", "cycles", "tenants", "max_error_rate", "max_p95_ms",
                 "drain_timeout", "worker_concurrency", "visibility_timeout", "out", "queue_url", "dlq_url",
                 "table", "region", "api_keys_file"):  # fmt: skip
        value = getattr(args, name)
        if value is not None:
            setattr(o, name, value)
    if o.host is None and not args.smoke and args.max_p95_ms is None:
        # The local stack shares a few cores with its emulator and with Locust: its spike p95 says
        # more about the machine than the code. The default is for deployments.
        o.max_p95_ms = 5000.0
    if args.simulated_cost_ms_per_kchar is not None:
        o.stack_env["SIMULATED_COST_MS_PER_KCHAR"] = str(args.simulated_cost_ms_per_kchar)
    if args.post:
        bodies = gen.BodyFactory(gen.Corpus(), random.Random(0))
        o.post = [
            bodies.event_batch(min(args.batch, args.post - i)).data for i in range(0, args.post, args.batch)
        ]
    o.locust_args = [a for a in args.locust_args if a != "--"]
    return o


def stop_on_sigterm() -> None:
    """SIGTERM (``timeout``, CI cancelling a job) unwinds like Ctrl-C, so the stack is stopped."""

    def _raise(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise)


def main(argv: list[str] | None = None) -> int:
    o = options_from_args(build_parser().parse_args(argv))
    stop_on_sigterm()
    started = time.monotonic()
    try:
        result = execute(o)
    except KeyboardInterrupt:
        say("interrupted; the local stack was stopped")
        return 130
    print_summary(result)
    say(f"total {time.monotonic() - started:.0f}s")
    return result.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
