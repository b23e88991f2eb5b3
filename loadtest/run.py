"""``python -m loadtest.run``: a headless Locust run and what it did to the pipeline, in one folder.

Without ``--host`` it starts a local stack on free ports (its own emulator and state directory), runs
Locust against it, samples the queue backlog and the DLQ every second, waits for the queue to drain,
then measures accepted records per second, end-to-end lag (``received_at`` -> ``stored_at``) of a
sample of records, lost records (accepted minus stored, per tenant of this run) and the drain time.
The stack is stopped on every exit, Ctrl-C included.

With ``--host https://...`` it runs Locust against that deployment; pass ``--queue-url``,
``--dlq-url`` and ``--table`` (the Terraform outputs) to get the same measures from AWS.

Exit code: 0 when Locust's thresholds hold and nothing was lost or dead-lettered; 1 otherwise.
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from loadtest import measures, shapes
from loadtest.generators import new_run_id
from local.inspect import Backlog, StackInspector, count_by_tenant
from local.process import REPO, StackProcess

DEFAULT_OUT = REPO / "loadtest" / "out"


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


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
    # Local stacks only. The wiring's 180 s is right for AWS; locally, messages the overloaded emulator
    # strands in flight (see docs/loadtest.md) would then hold up every run for three minutes. 45 s is
    # still above the worker's 30 s function timeout, as SQS requires.
    visibility_timeout: int | None = 45
    stack_env: dict[str, str] = field(default_factory=dict)
    queue_url: str | None = None
    dlq_url: str | None = None
    table: str | None = None
    region: str | None = None
    api_keys_file: str | None = None
    locust_args: list[str] = field(default_factory=list)
    quiet: bool = False

    @classmethod
    def smoke(cls) -> RunOptions:
        # Correctness strict (no failed request, nothing lost); latency generous: CI runs this on a
        # loaded 2-core machine where a p95 of seconds says nothing about the code.
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
        self.errors = 0
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
                    self.errors += 1
                else:
                    with self._lock:
                        self.samples.append((started, b))
                    writer.writerow([f"{started:.3f}", b.visible, b.in_flight, b.total, b.dlq])
                    f.flush()
                self._stop_event.wait(max(0.0, self.interval - (time.time() - started)))

    def series(self) -> list[tuple[float, int]]:
        with self._lock:
            return [(t, b.total) for t, b in self.samples]

    def detail(self) -> list[tuple[float, int, int]]:
        with self._lock:
            return [(t, b.visible, b.in_flight) for t, b in self.samples]

    def latest(self) -> Backlog | None:
        with self._lock:
            return self.samples[-1][1] if self.samples else None

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
    """Accepted records per tenant, requests, and sampled (tenant, event_id) from every Locust process."""
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


def _locust_stats(out: Path) -> dict[str, Any]:
    path = out / "thresholds.json"
    return orjson.loads(path.read_bytes()) if path.exists() else {}


def execute(o: RunOptions) -> RunResult:
    """One run end to end; the local stack (if any) is stopped before this returns or raises."""
    out = o.out or DEFAULT_OUT / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    run_id = new_run_id()
    stack_proc: StackProcess | None = None
    sampler: BacklogSampler | None = None
    locust: subprocess.Popen[bytes] | None = None
    say = (lambda _t: None) if o.quiet else _say
    try:
        probe: StackInspector | None = None
        if o.host is None:
            state_dir = Path(tempfile.mkdtemp(prefix="sluice-loadtest-"))
            stack_proc = StackProcess(state_dir, o.worker_concurrency, o.stack_env, o.visibility_timeout)
            t0 = time.monotonic()
            say(f"starting a local stack (state in {state_dir}) ...")
            stack = stack_proc.start()
            say(f"  up in {time.monotonic() - t0:.1f}s at {stack.api_url}")
            host = stack.api_url
            os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
            os.environ.pop("AWS_SESSION_TOKEN", None)
            os.environ.pop("AWS_PROFILE", None)
            probe = StackInspector(stack.queue_url, stack.dlq_url, stack.table_name,
                                  endpoint_url=stack.endpoint_url, region=stack.region)  # fmt: skip
        else:
            host = o.host.rstrip("/")
            if o.queue_url or o.table:
                probe = StackInspector(o.queue_url, o.dlq_url, o.table, region=o.region)
        if probe is not None and probe.queue_url:
            sampler = BacklogSampler(probe, out / "backlog.csv")
            sampler.start()

        cmd = locust_command(o, host, out, run_id)
        (out / "command.txt").write_text(" ".join(cmd) + "\n")
        budget = o.schedule().duration + 90
        say(f"running locust ({o.shape}, peak {o.users} users, ~{o.schedule().duration:.0f}s) -> {out}")
        load_started = time.time()
        with open(out / "locust.log", "wb") as log:
            locust = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                                      stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
            try:
                locust_code = locust.wait(timeout=budget)
            except subprocess.TimeoutExpired:
                locust.terminate()
                locust_code = locust.wait(timeout=30)
                say(f"locust ran past its budget of {budget:.0f}s and was stopped")
        locust = None
        load_ended = time.time()

        drained = None
        if sampler is not None:
            say("load finished; waiting for the queue to drain ...")
            drained = wait_for_drain(sampler, o.drain_timeout)
        summary = _measure(o, out, run_id, probe, sampler, load_started, load_ended, locust_code, drained)
        series = sampler.series() if sampler else []
        return RunResult(out, run_id, summary["exit_code"], summary, series, load_started, load_ended)
    finally:
        if locust is not None and locust.poll() is None:
            locust.terminate()
            try:
                locust.wait(timeout=15)
            except subprocess.TimeoutExpired:
                locust.kill()
        if sampler is not None:
            sampler.stop()
        if stack_proc is not None:
            stack_proc.stop()


def _measure(o: RunOptions, out: Path, run_id: str, probe: StackInspector | None,
             sampler: BacklogSampler | None, load_started: float, load_ended: float, locust_code: int,
             drained: bool | None) -> dict[str, Any]:  # fmt: skip
    accepted, requests, samples = read_receipts(out)
    stats = _locust_stats(out)
    phases = read_phases(out)
    if phases:
        load_started = phases[0][0]
    load_seconds = max(1e-9, load_ended - load_started)
    total_accepted = sum(accepted.values())
    summary: dict[str, Any] = {
        "run_id": run_id,
        "shape": o.shape,
        "peak_users": o.users,
        "load_seconds": round(load_seconds, 1),
        "requests": stats.get("requests", requests),
        "failed_requests": stats.get("failures"),
        "request_p95_ms": stats.get("p95_ms"),
        "records_accepted": total_accepted,
        "accepted_per_second": round(total_accepted / load_seconds, 1),
        "tenants": dict(accepted.most_common()),
        "threshold_failures": stats.get("failed", ["locust wrote no thresholds.json"]),
        "locust_exit_code": locust_code,
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
        stored = count_by_tenant(probe, sorted(accepted))
        loss = measures.losses(accepted, stored)
        summary.update(records_stored=loss.stored, lost_records=loss.lost, unacknowledged_extra=loss.extra,
                       lost_by_tenant=loss.lost_by_tenant)  # fmt: skip
        if loss.lost:
            failures.append(f"{loss.lost} accepted record(s) were not stored: {loss.lost_by_tenant}")
        stamps = probe.timestamps(samples)
        lags = []
        with open(out / "lag.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["tenant_id", "event_id", "received_at", "stored_at", "lag_s"])
            for key in samples:
                got = stamps.get(key)
                if got is None or got[0] is None or got[1] is None:
                    writer.writerow([*key, "", "", ""])
                    continue
                seconds = measures.lag_seconds(got[0], got[1])
                lags.append(seconds)
                writer.writerow([*key, got[0], got[1], f"{seconds:.4f}"])
        lag = measures.LagSummary.of(lags)
        summary["lag_samples"] = lag.samples
        summary["lag_samples_missing"] = len(set(samples)) - len(stamps)
        for name in ("p50", "p95", "p99", "max"):
            value = getattr(lag, name)
            summary[f"lag_{name}_s"] = None if value is None else round(value, 3)
    if sampler is not None and probe is not None and probe.dlq_url:
        final = probe.backlog()
        summary["dlq_depth"] = final.dlq
        if final.dlq:
            failures.append(f"{final.dlq} message(s) in the DLQ")
    summary["failures"] = failures
    summary["exit_code"] = 1 if failures else 0
    (out / "summary.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    return summary


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
    ("requests", "requests sent"),
    ("failed_requests", "failed requests"),
    ("request_p95_ms", "request p95 (ms)"),
    ("records_accepted", "records accepted"),
    ("accepted_per_second", "accepted records / s"),
    ("peak_backlog", "peak queue backlog"),
    ("drain_after_last_spike_s", "drain after last spike (s)"),
    ("empty_after_load_s", "queue empty after load (s)"),
    ("lag_p50_s", "lag p50 (s)"),
    ("lag_p95_s", "lag p95 (s)"),
    ("lag_p99_s", "lag p99 (s)"),
    ("lag_samples", "lag samples"),
    ("stalled_in_flight", "stuck in flight (msgs)"),
    ("records_stored", "records stored"),
    ("lost_records", "LOST records"),
    ("dlq_depth", "DLQ depth"),
)


def print_summary(result: RunResult) -> None:
    s = result.summary
    rows = [(label, s[key]) for key, label in ROWS if key in s]
    _say("")
    _say(measures.table(rows, ("measure", "value")))
    _say("")
    verdict = "PASS" if result.exit_code == 0 else "FAIL: " + "; ".join(s["failures"])
    _say(f"{verdict}\nresults: {result.out}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtest.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--host", help="a deployed API (https://...); default: start a local stack")
    p.add_argument("--smoke", action="store_true", help="a few seconds with 3 users: the CI check")
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
                 "drain_timeout", "worker_concurrency", "visibility_timeout", "out", "queue_url", "dlq_url", "table", "region",
                 "api_keys_file"):  # fmt: skip
        value = getattr(args, name)
        if value is not None:
            setattr(o, name, value)
    if o.host is None and not args.smoke and args.max_p95_ms is None:
        # The local stack shares a few cores with its emulator and with Locust: at the spike its p95 is
        # seconds on a 2-core machine. The 2 s default is for deployments.
        o.max_p95_ms = 5000.0
    if args.simulated_cost_ms_per_kchar is not None:
        o.stack_env["SIMULATED_COST_MS_PER_KCHAR"] = str(args.simulated_cost_ms_per_kchar)
    o.locust_args = [a for a in args.locust_args if a != "--"]
    return o


def stop_on_sigterm() -> None:
    """SIGTERM (``timeout``, CI cancelling a job) unwinds like Ctrl-C, so ``finally`` stops the stack."""

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
        _say("interrupted; the local stack was stopped")
        return 130
    print_summary(result)
    _say(f"total {time.monotonic() - started:.0f}s")
    return result.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
