"""``python -m loadtest.tenants`` (``make loadtest-tenants``): the noisy-neighbour scenario of docs/quotas.md.

One local stack with API keys on and a per-tenant records quota (``--tenant-records-per-second``), four
tenants with their own keys (or a deployment: ``--host`` with its keys file and AWS names), and in the same
run, after an unmeasured warm-up, two phases (``shapes.noisy_neighbour``):

- **baseline**: three quiet tenants send small requests at steady rates, well inside the quota;
- **flood**: the same quiet load while a fourth tenant sends ``--flood-factor`` (20) times the quota in
  large requests over several keep-alive clients.

Per tenant and phase: requests sent, accepted, refused (429), 5xx, p95 accept latency, p95 end-to-end lag
(``received_at`` -> ``stored_at`` of one sampled record per accepted request, read back through
``StackInspector``); per tenant: accepted records not stored. Then the verdicts for issue 16's targets:
each quiet tenant's p95 accept latency and p95 lag at most 1.5x its own baseline and none of its requests
refused, the flooder refused with 429 and never a 5xx, nothing accepted lost, nothing in the DLQ.

Output in ``loadtest/out/tenants-<timestamp>/``: ``tenants.json`` (every figure, the verdicts, the load
average, the cores the stack and its emulator used per phase), ``requests.csv`` (one row per request),
``lag.csv``, ``backlog.csv`` and ``tenants.png`` (accept rate, accept latency and lag per tenant over time,
the flood shaded). Exit code 0 only when every verdict holds.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from loadtest import generators as gen
from loadtest import measures, shapes
from loadtest.run import (
    DEFAULT_OUT,
    BacklogSampler,
    KeepAliveClient,
    PostBody,
    RunOptions,
    say,
    start_local_stack,
    stop_on_sigterm,
    wait_for_drain,
)
from local.inspect import StackInspector, count_by_tenant
from local.moto_server import WITHOUT_FAIR_QUEUE

OPTIONS_SHOWN = (
    "quota_records_per_second", "quota_records_burst", "quiet_records_per_second", "quiet_batch", "flood_factor",
    "flood_batch", "flood_clients", "baseline_seconds", "flood_seconds", "warm_up_seconds", "drain_timeout",
    "worker_concurrency", "worker_cost_ms_per_kchar", "fair_queue",
)  # fmt: skip
MAX_RATIO = 1.5  # issue 16: a quiet tenant's p95s under the flood, against its own baseline
QUIET, FLOODER = "quiet", "flooder"
# The phases whose requests are measured; the warm-up's (cold starts, the pacing settling) are not.
MEASURED = ("baseline", "flood")
WARM_UP_REQUESTS = 16  # concurrent requests before the load: every ingest environment it will use exists
HANDLER_MS_HEADER = "x-sluice-duration-ms"  # local/http.py: the time inside the ingest function


@dataclass(frozen=True)
class Sender:
    """One tenant's load: ``clients`` keep-alive clients, each paced at ``requests_per_second``."""

    tenant: str
    role: str  # QUIET or FLOODER
    records_per_request: int
    requests_per_second: float  # per client
    clients: int
    phases: tuple[str, ...]  # the phases it sends in

    @property
    def records_per_second(self) -> float:
        return self.records_per_request * self.requests_per_second * self.clients


@dataclass
class ScenarioOptions:
    """The scenario's knobs; the defaults are ``make loadtest-tenants``, ``short()`` the tooling test's."""

    quota_records_per_second: float = 100.0
    quota_records_burst: float = 300.0
    quiet_records_per_second: tuple[float, ...] = (20.0, 30.0, 40.0)
    quiet_batch: int = 5
    flood_factor: float = 20.0
    flood_batch: int = 250
    flood_clients: int = 4
    baseline_seconds: float = 30.0
    flood_seconds: float = 30.0
    warm_up_seconds: float = 5.0
    drain_timeout: float = 120.0
    worker_concurrency: int | None = None
    worker_cost_ms_per_kchar: float | None = None  # a slower worker (SIMULATED_COST_MS_PER_KCHAR): a backlog
    fair_queue: bool = True  # False: the emulator delivers oldest first, to measure what fair queueing does
    # A deployment instead of a local stack: its API, its AWS names (Terraform outputs) and a key file
    # {"tenant": "key", ...} naming the quiet tenants, then the flooder, then optionally a warm-up tenant.
    host: str | None = None
    api_keys_file: Path | None = None
    queue_url: str | None = None
    dlq_url: str | None = None
    table: str | None = None
    region: str | None = None
    out: Path | None = None
    plot: bool = True
    quiet: bool = False
    stack_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def short(cls) -> ScenarioOptions:
        """A few seconds per phase: enough to see who is refused and what is lost, not to time anything."""
        return cls(baseline_seconds=3.0, flood_seconds=4.0, warm_up_seconds=1.0,
                   quiet_records_per_second=(10.0, 15.0, 20.0), flood_clients=3, drain_timeout=60.0,
                   plot=False, quiet=True)  # fmt: skip

    def schedule(self) -> shapes.Schedule:
        return shapes.noisy_neighbour(len(self.quiet_records_per_second), self.flood_clients,
                                      self.baseline_seconds, self.flood_seconds, self.warm_up_seconds)  # fmt: skip

    def senders(self, run_id: str, tenants: Sequence[str] | None = None) -> list[Sender]:
        """The quiet tenants (``t00``...) in every phase, and the flooder (the next tenant) in the flood only."""
        tenants = list(tenants or gen.run_tenants(run_id, len(self.quiet_records_per_second) + 1))
        every = tuple(p.name for p in self.schedule().phases)
        out = [Sender(t, QUIET, self.quiet_batch, rate / self.quiet_batch, 1, every)
               for t, rate in zip(tenants, self.quiet_records_per_second, strict=False)]  # fmt: skip
        per_client = self.flood_factor * self.quota_records_per_second / self.flood_batch / self.flood_clients
        out.append(Sender(tenants[-1], FLOODER, self.flood_batch, per_client, self.flood_clients, ("flood",)))
        return out


@dataclass(frozen=True)
class Outcome:
    """One request: who sent it in which phase, when, how long the answer took, and what it said."""

    tenant: str
    phase: str
    sent_at: float
    seconds: float
    status: int  # 0: no answer (connection failed)
    records: int
    accepted: int
    sample: str | None  # one accepted event id, for the lag
    handler_seconds: float | None = None  # the ingest function's own time (the local gateway says it)


def send(client: KeepAliveClient, sender: Sender, key: str | None, bodies: Sequence[PostBody],
         schedule: shapes.Schedule, started: float, seed: int) -> list[Outcome]:  # fmt: skip
    """One client of ``sender``: paced requests (open loop: a slow answer does not lower the rate).

    With ``key`` the tenant is its API key's; without, ``X-Tenant-Id`` names it (API keys off).
    """
    rng = random.Random(seed)
    headers = {"authorization": f"Bearer {key}"} if key else {"x-tenant-id": sender.tenant}
    interval = 1.0 / sender.requests_per_second
    next_at = started + rng.random() * interval
    outcomes: list[Outcome] = []
    while True:
        found = schedule.phase_at(next_at - started)
        if found is None:
            return outcomes
        phase = found[1].name
        if phase not in sender.phases:
            next_at += interval
            continue
        time.sleep(max(0.0, next_at - time.time()))
        body = bodies[len(outcomes) % len(bodies)]
        sent_at = time.time()
        try:
            status, answer, reply = client.exchange(body, headers)
        except (OSError, http.client.HTTPException):
            status, answer, reply = 0, {}, b""
        seconds = time.time() - sent_at
        ids = (orjson.loads(reply).get("event_ids") or []) if status == 202 else []
        handler_ms = answer.get(HANDLER_MS_HEADER)
        outcomes.append(Outcome(sender.tenant, phase, sent_at, seconds, status, sender.records_per_request,
                                len(set(ids)), rng.choice(ids) if ids else None,
                                None if handler_ms is None else float(handler_ms) / 1000))  # fmt: skip
        next_at += interval


def warm_up(client: KeepAliveClient, key: str, rounds: int = 2) -> None:
    """Concurrent requests of a tenant of its own, so the load starts on warm ingest and authorizer
    environments: a cold start during the baseline or the flood would be measured as either."""
    headers = {"authorization": f"Bearer {key}"}
    body = PostBody(orjson.dumps([{"warm": True}]))
    with ThreadPoolExecutor(WARM_UP_REQUESTS) as pool:
        for _ in range(rounds):
            list(pool.map(lambda _: client.post(body, headers), range(WARM_UP_REQUESTS)))


def request_bodies(sender: Sender, count: int, seed: int) -> list[PostBody]:
    """``count`` distinct bodies to cycle through (events carry no ids, so a repeated body is new records)."""
    factory = gen.BodyFactory(gen.Corpus(), random.Random(seed))
    return [PostBody(factory.event_batch(sender.records_per_request).data) for _ in range(count)]


@dataclass(frozen=True)
class PhaseFigures:
    """One tenant in one phase."""

    tenant: str
    role: str
    phase: str
    requests: int
    accepted: int
    refused: int  # 429
    server_errors: int  # 5xx
    other_failures: int  # no answer, or another status
    records_offered_per_s: float
    records_accepted_per_s: float
    accept_p95_ms: float | None
    handler_p95_ms: float | None  # of the same requests: the part spent inside the ingest function
    lag_p95_s: float | None
    lag_samples: int


def figures(outcomes: Iterable[Outcome], lags: Mapping[tuple[str, str], float], senders: Sequence[Sender],
            schedule: shapes.Schedule) -> list[PhaseFigures]:  # fmt: skip
    """Per tenant and phase: counts by answer, rates, p95 accept latency and p95 lag of the samples."""
    by: dict[tuple[str, str], list[Outcome]] = {}
    for o in outcomes:
        by.setdefault((o.tenant, o.phase), []).append(o)
    seconds = {p.name: p.seconds for p in schedule.phases}
    rows = []
    for sender in senders:
        for phase in (p for p in sender.phases if p in MEASURED):
            done = by.get((sender.tenant, phase), [])
            status = Counter(o.status for o in done)
            sampled = [lags[(o.tenant, o.sample)] for o in done if o.sample and (o.tenant, o.sample) in lags]
            p95 = measures.percentile([o.seconds * 1000 for o in done if o.status == 202], 95)
            inside = measures.percentile(
                [o.handler_seconds * 1000 for o in done if o.status == 202 and o.handler_seconds is not None],
                95,
            )
            lag = measures.percentile(sampled, 95)
            rows.append(PhaseFigures(
                sender.tenant, sender.role, phase, len(done), status[202], status[429],
                sum(n for s, n in status.items() if s >= 500),
                sum(n for s, n in status.items() if s not in (202, 429) and not s >= 500),
                round(sum(o.records for o in done) / seconds[phase], 1),
                round(sum(o.accepted for o in done) / seconds[phase], 1),
                None if p95 is None else round(p95, 1), None if inside is None else round(inside, 1),
                None if lag is None else round(lag, 3), len(sampled),
            ))  # fmt: skip
    return rows


@dataclass(frozen=True)
class Verdict:
    met: bool
    text: str


def _ratio(after: float | None, before: float | None) -> float | None:
    return None if after is None or not before else after / before


def verdicts(rows: Sequence[PhaseFigures], lost: int, dlq: int | None, quota: float) -> list[Verdict]:
    """Issue 16's targets, one line each: the quiet tenants against their own baseline, the flooder, losses."""
    out: list[Verdict] = []
    cell = {(r.tenant, r.phase): r for r in rows}
    for r in rows:
        if r.role != QUIET or r.phase != "flood":
            continue
        base = cell[(r.tenant, "baseline")]
        for label, unit, after, before in (("p95 accept latency", "ms", r.accept_p95_ms, base.accept_p95_ms),
                                           ("p95 end-to-end lag", "s", r.lag_p95_s, base.lag_p95_s)):  # fmt: skip
            ratio = _ratio(after, before)
            out.append(Verdict(ratio is not None and ratio <= MAX_RATIO,
                               f"quiet {r.tenant}: {label} {measures.cell(after)} {unit} under the flood vs "
                               f"{measures.cell(before)} {unit} baseline = "
                               f"{'-' if ratio is None else f'{ratio:.3f}'}x (target <= {MAX_RATIO}x)"))  # fmt: skip
        refused = r.refused + base.refused
        out.append(Verdict(refused == 0, f"quiet {r.tenant}: {refused} request(s) refused (target 0)"))
    for r in rows:
        if r.role == FLOODER and r.phase == "flood":
            factor = r.records_offered_per_s / quota if quota else 0.0
            out.append(Verdict(r.refused > 0 and r.server_errors == 0,
                               f"flooder {r.tenant} (offered {factor:.1f}x its quota): {r.refused} refused with "
                               f"429, {r.server_errors} 5xx (target: some 429, 0 5xx)"))  # fmt: skip
    out.append(Verdict(lost == 0, f"{lost} accepted record(s) lost (target 0)"))
    out.append(Verdict(dlq == 0, f"{'-' if dlq is None else dlq} message(s) in the DLQ (target 0)"))
    return out


COLUMNS = (
    ("tenant", "tenant"), ("role", "role"), ("phase", "phase"), ("requests", "requests"),
    ("accepted", "accepted"), ("refused", "429"), ("server_errors", "5xx"), ("other_failures", "other"),
    ("records_offered_per_s", "offered rec/s"), ("records_accepted_per_s", "accepted rec/s"),
    ("accept_p95_ms", "accept p95 (ms)"), ("handler_p95_ms", "in function p95 (ms)"),
    ("lag_p95_s", "lag p95 (s)"), ("lag_samples", "lag samples"),
)  # fmt: skip


class CpuSampler(threading.Thread):
    """CPU seconds of the stack's process and of its emulator (its children), sampled every 0.5 s."""

    def __init__(self, pid: int | None, interval: float = 0.5) -> None:
        super().__init__(name="cpu-sampler", daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, float, float]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psutil

        try:
            stack = psutil.Process(self.pid)
        except (psutil.Error, ValueError):
            return
        while not self._stop_event.wait(self.interval):
            try:
                own = sum(stack.cpu_times()[:2])
                children = sum(sum(c.cpu_times()[:2]) for c in stack.children(recursive=True))
            except psutil.Error:
                continue
            self.samples.append((time.time(), own, children))

    def per_phase(self, schedule: shapes.Schedule, started: float) -> dict[str, dict[str, float | None]]:
        """Cores used per phase (CPU seconds per second) by the stack and by the emulator."""
        out: dict[str, dict[str, float | None]] = {}
        start = started
        for phase in schedule.phases:
            inside = [s for s in self.samples if start <= s[0] <= start + phase.seconds]
            if len(inside) < 2:
                out[phase.name] = {"stack_cores": None, "emulator_cores": None}
            else:
                (t0, a0, b0), (t1, a1, b1) = inside[0], inside[-1]
                out[phase.name] = {"stack_cores": round((a1 - a0) / (t1 - t0), 3),
                                   "emulator_cores": round((b1 - b0) / (t1 - t0), 3)}  # fmt: skip
            start += phase.seconds
        return out

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


@dataclass
class ScenarioResult:
    out: Path
    started: float
    outcomes: list[Outcome]
    lags: dict[tuple[str, str], float]
    rows: list[PhaseFigures]
    verdicts: list[Verdict]
    summary: dict[str, Any]

    @property
    def exit_code(self) -> int:
        return 0 if all(v.met for v in self.verdicts) else 1


@dataclass
class Target:
    """What the scenario loads and reads: the API, its AWS side, and a key per tenant."""

    api_url: str
    probe: StackInspector
    keys: dict[str, str]
    tenants: list[str]
    warm_up_key: str | None
    cpu: CpuSampler | None


def _local_target(o: ScenarioOptions, cleanup: ExitStack, report: Any, run_id: str) -> Target:
    """A local stack with API keys on and ``o``'s quota, a key per tenant of the run; stopped by ``cleanup``."""
    from ingest.apikeys import ApiKeyStore

    quota_args = ["--auth", "--tenant-records-per-second", str(o.quota_records_per_second),
                  "--tenant-records-burst", str(o.quota_records_burst)]  # fmt: skip
    env = dict(o.stack_env)
    if o.worker_cost_ms_per_kchar is not None:
        env["SIMULATED_COST_MS_PER_KCHAR"] = str(o.worker_cost_ms_per_kchar)
    if not o.fair_queue:
        env[WITHOUT_FAIR_QUEUE] = "1"
    stack_options = RunOptions(worker_concurrency=o.worker_concurrency, stack_env=env, stack_args=quota_args)
    stack, process = start_local_stack(stack_options, cleanup, report)
    cpu = CpuSampler(process.pid)
    cpu.start()
    cleanup.callback(cpu.stop)
    probe = StackInspector.for_stack(stack, read_timeout=60)
    store = ApiKeyStore(stack.api_keys_table_name, client=probe.client("dynamodb"))
    tenants = gen.run_tenants(run_id, len(o.quiet_records_per_second) + 1)
    keys = {t: store.create(t, "loadtest tenants")[0] for t in tenants}
    warm = store.create(f"lt-{run_id}-warm", "loadtest tenants warm-up")[0]
    return Target(stack.api_url, probe, keys, tenants, warm, cpu)


def _deployment(o: ScenarioOptions, run_id: str) -> Target:
    """A deployment: ``o.host``, its queues and table, and the tenants and keys of ``o.api_keys_file``.

    Its quota is its own (``tenant_quota`` or the tenants' overrides): ``--quota`` must say what it is,
    for the flood's rate. Use fresh tenants per run, so the stored counts see only this run's records.
    """
    if not (o.api_keys_file and o.queue_url and o.table):
        raise SystemExit("a deployment needs --api-keys-file, --queue-url and --table (and --dlq-url)")
    keys = {str(t): str(k) for t, k in orjson.loads(o.api_keys_file.read_bytes()).items()}
    needed = len(o.quiet_records_per_second) + 1
    if len(keys) < needed:
        raise SystemExit(f"{o.api_keys_file}: {needed} tenants needed (the quiet ones, then the flooder)")
    tenants = list(keys)[:needed]
    warm = keys[list(keys)[needed]] if len(keys) > needed else None
    probe = StackInspector(o.queue_url, o.dlq_url, o.table, region=o.region, read_timeout=60)
    return Target(o.host.rstrip("/") if o.host else "", probe, keys, tenants, warm, None)


def execute(o: ScenarioOptions) -> ScenarioResult:
    """The scenario end to end; the local stack (if any) is stopped before this returns or raises."""
    out = o.out or DEFAULT_OUT / time.strftime("tenants-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    report = (lambda _t: None) if o.quiet else say
    run_id = gen.new_run_id()
    schedule = o.schedule()
    with ExitStack() as cleanup:
        target = _local_target(o, cleanup, report, run_id) if o.host is None else _deployment(o, run_id)
        api_url, probe, keys, cpu = target.api_url, target.probe, target.keys, target.cpu
        senders = o.senders(run_id, target.tenants)
        bodies = {s.tenant: request_bodies(s, 4 if s.role == FLOODER else 20, seed=i)
                  for i, s in enumerate(senders)}  # fmt: skip
        sampler = BacklogSampler(probe, out / "backlog.csv")
        sampler.start()
        cleanup.callback(sampler.stop)
        client = KeepAliveClient(api_url)
        if target.warm_up_key:
            warm_up(client, target.warm_up_key)
        load_before = os.getloadavg()
        phases = ", ".join(f"{p.name} {p.seconds:.0f}s" for p in schedule.phases)
        report(f"load: {schedule.duration:.0f}s ({phases}); "
               f"quota {o.quota_records_per_second:.0f} records/s, burst {o.quota_records_burst:.0f}")  # fmt: skip
        started = time.time() + 0.5
        jobs = [(s, k) for s in senders for k in range(s.clients)]
        with ThreadPoolExecutor(len(jobs)) as pool:
            futures = [pool.submit(send, client, s, keys[s.tenant], bodies[s.tenant], schedule, started, i)
                       for i, (s, _) in enumerate(jobs)]  # fmt: skip
            outcomes = sorted((x for f in futures for x in f.result()), key=lambda x: x.sent_at)
        load_after = os.getloadavg()
        report("load finished; waiting for the queue to drain ...")
        drained = wait_for_drain(sampler, o.drain_timeout)
        accepted: Counter[str] = Counter()
        for x in outcomes:
            accepted[x.tenant] += x.accepted
        loss = measures.losses(accepted, count_by_tenant(probe, [s.tenant for s in senders]))
        stamps = probe.timestamps((x.tenant, x.sample) for x in outcomes if x.sample)
        lags = {
            key: measures.lag_seconds(r, s)
            for key, (r, s) in stamps.items()
            if r is not None and s is not None
        }
        dlq = probe.backlog().dlq
    rows = figures(outcomes, lags, senders, schedule)
    cpu_by_phase = cpu.per_phase(schedule, started) if cpu is not None else {}
    found = verdicts(rows, loss.lost, dlq, o.quota_records_per_second)
    if not drained:
        found.append(Verdict(False, f"the queue did not drain within {o.drain_timeout:.0f}s"))
    summary = {
        "run_id": run_id, "target": o.host or "local stack",
        "options": {k: v for k, v in asdict(o).items() if k in OPTIONS_SHOWN},
        "senders": [asdict(s) for s in senders], "rows": [asdict(r) for r in rows],
        "lost_by_tenant": loss.lost_by_tenant, "records_accepted": loss.accepted, "records_stored": loss.stored,
        "dlq_depth": dlq, "drained": drained, "peak_backlog": measures.peak(sampler.series()),
        "load_average_before": load_before, "load_average_after": load_after, "cpu_by_phase": cpu_by_phase,
        "verdicts": [asdict(v) for v in found], "passed": all(v.met for v in found),
    }  # fmt: skip
    result = ScenarioResult(out, started, outcomes, lags, rows, found, summary)
    write(result, schedule)
    return result


def write(result: ScenarioResult, schedule: shapes.Schedule) -> None:
    """``tenants.json``, ``requests.csv`` and ``lag.csv`` in the run's folder."""
    out = result.out
    (out / "tenants.json").write_bytes(orjson.dumps(result.summary, option=orjson.OPT_INDENT_2))
    with open(out / "requests.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["tenant", "phase", "sent_at", "seconds", "handler_seconds", "status", "records",
                         "accepted", "sample"])  # fmt: skip
        writer.writerows([o.tenant, o.phase, f"{o.sent_at:.3f}", f"{o.seconds:.4f}",
                          "" if o.handler_seconds is None else f"{o.handler_seconds:.4f}", o.status, o.records,
                          o.accepted, o.sample or ""] for o in result.outcomes)  # fmt: skip
    with open(out / "lag.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["tenant", "event_id", "lag_s"])
        writer.writerows([t, e, f"{lag:.4f}"] for (t, e), lag in result.lags.items())


def plot(result: ScenarioResult, schedule: shapes.Schedule, path: Path) -> None:
    """Accepted records/s, accept latency and end-to-end lag per tenant over time, the flood shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rate, latency, lag) = plt.subplots(3, 1, figsize=(10, 9), dpi=80, sharex=True)
    t0 = result.started
    end = schedule.duration
    tenants = list(dict.fromkeys(s["tenant"] for s in result.summary["senders"]))
    roles = {s["tenant"]: s["role"] for s in result.summary["senders"]}
    for tenant in tenants:
        mine = [o for o in result.outcomes if o.tenant == tenant]
        label = f"{tenant} ({roles[tenant]})"
        per_second: Counter[int] = Counter()
        for o in mine:
            per_second[int(o.sent_at - t0)] += o.accepted
        xs = list(range(int(end) + 1))
        rate.plot(xs, [per_second.get(x, 0) for x in xs], label=label, linewidth=1.4)
        ok = [o for o in mine if o.status == 202]
        latency.scatter([o.sent_at - t0 for o in ok], [o.seconds * 1000 for o in ok], s=6, label=label)
        refused = [o for o in mine if o.status == 429]
        if refused:
            latency.scatter([o.sent_at - t0 for o in refused], [o.seconds * 1000 for o in refused], s=6,
                            marker="x", color="0.5", label=f"{tenant}: refused (429)")  # fmt: skip
        sampled = sorted((o.sent_at - t0, result.lags[(o.tenant, o.sample)]) for o in mine
                         if o.sample and (o.tenant, o.sample) in result.lags)  # fmt: skip
        lag.plot([x for x, _ in sampled], [y for _, y in sampled], marker=".", markersize=3, linewidth=0.8,
                 label=label)  # fmt: skip
    start = 0.0
    for phase in schedule.phases:
        if phase.name == "flood":
            for ax in (rate, latency, lag):
                ax.axvspan(start, start + phase.seconds, color="0.92", zorder=0)
        start += phase.seconds
    rate.set(ylabel="accepted records / s", title="Noisy neighbour: per-tenant accept rate, latency and lag "
                                                 "(flood shaded)")  # fmt: skip
    latency.set(ylabel="accept latency (ms)", yscale="log")
    lag.set(ylabel="end-to-end lag (s)", xlabel="seconds since the load started", ylim=(0, None))
    for ax in (rate, latency, lag):
        ax.grid(alpha=0.3)
    rate.legend(fontsize=7, loc="upper left")
    latency.legend(fontsize=7, loc="upper left", ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def print_result(result: ScenarioResult) -> None:
    s = result.summary
    say(measures.table([[getattr(r, key) for key, _ in COLUMNS] for r in result.rows],
                       [label for _, label in COLUMNS], "Per tenant and phase"))  # fmt: skip
    say(f"\nrecords accepted {s['records_accepted']:,}, stored {s['records_stored']:,}, "
        f"lost {sum(s['lost_by_tenant'].values())}, DLQ {s['dlq_depth']}, peak backlog {s['peak_backlog']}")  # fmt: skip
    if s["cpu_by_phase"]:
        say("cores used by the stack / its emulator: " + ", ".join(
            f"{name} {measures.cell(c['stack_cores'])} / {measures.cell(c['emulator_cores'])}"
            for name, c in s["cpu_by_phase"].items()))  # fmt: skip
    say("load average (1/5/15 min) before the load {:.2f} {:.2f} {:.2f}, after {:.2f} {:.2f} {:.2f}".format(
        *s["load_average_before"], *s["load_average_after"]))  # fmt: skip
    say("\nTargets")
    for v in result.verdicts:
        say(f"  {'MET   ' if v.met else 'MISSED'}  {v.text}")
    say(f"\nresults: {result.out}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest.tenants", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    d = ScenarioOptions()
    p.add_argument("--quota", type=float, default=d.quota_records_per_second, help="records/s per tenant")
    p.add_argument("--burst", type=float, default=d.quota_records_burst, help="records burst per tenant")
    p.add_argument("--quiet-rates", default=",".join(f"{r:g}" for r in d.quiet_records_per_second),
                   help="records/s of each quiet tenant, comma-separated")  # fmt: skip
    p.add_argument("--quiet-batch", type=int, default=d.quiet_batch, help="records per quiet request")
    p.add_argument(
        "--flood-factor", type=float, default=d.flood_factor, help="flooder's offered rate / quota"
    )
    p.add_argument("--flood-batch", type=int, default=d.flood_batch, help="records per flood request")
    p.add_argument("--flood-clients", type=int, default=d.flood_clients, help="flooder's keep-alive clients")
    p.add_argument("--baseline-seconds", type=float, default=d.baseline_seconds)
    p.add_argument("--flood-seconds", type=float, default=d.flood_seconds)
    p.add_argument("--worker-concurrency", type=int, help="local stack: worker maximum concurrency")
    p.add_argument("--worker-cost-ms-per-kchar", type=float,
                   help="local stack: worker cost per record (SIMULATED_COST_MS_PER_KCHAR): a backlog")  # fmt: skip
    p.add_argument("--without-fair-queue", action="store_true",
                   help="the emulator delivers oldest first: to measure what fair queues change")  # fmt: skip
    p.add_argument("--host", help="a deployed API (https://...) instead of a local stack")
    p.add_argument("--api-keys-file", type=Path,
                   help='deployment: JSON {"tenant": "key"}: the quiet tenants, the flooder, a warm-up tenant')  # fmt: skip
    p.add_argument("--queue-url", help="deployment: the events queue URL (terraform output)")
    p.add_argument("--dlq-url", help="deployment: the dead-letter queue URL")
    p.add_argument("--table", help="deployment: the events table name")
    p.add_argument("--region", help="deployment: AWS region (default: your AWS config)")
    p.add_argument("--out", type=Path, help="output folder (default: loadtest/out/tenants-<timestamp>)")
    args = p.parse_args(argv)
    o = replace(d, quota_records_per_second=args.quota, quota_records_burst=args.burst,
                quiet_records_per_second=tuple(float(r) for r in args.quiet_rates.split(",") if r.strip()),
                quiet_batch=args.quiet_batch, flood_factor=args.flood_factor, flood_batch=args.flood_batch,
                flood_clients=args.flood_clients, baseline_seconds=args.baseline_seconds,
                flood_seconds=args.flood_seconds, worker_concurrency=args.worker_concurrency,
                worker_cost_ms_per_kchar=args.worker_cost_ms_per_kchar, fair_queue=not args.without_fair_queue,
                host=args.host, api_keys_file=args.api_keys_file, queue_url=args.queue_url, dlq_url=args.dlq_url,
                table=args.table, region=args.region, out=args.out)  # fmt: skip
    stop_on_sigterm()
    started = time.monotonic()
    try:
        result = execute(o)
    except KeyboardInterrupt:
        say("interrupted; the local stack was stopped")
        return 130
    if o.plot:
        plot(result, o.schedule(), result.out / "tenants.png")
    print_result(result)
    say(f"total {time.monotonic() - started:.0f}s")
    return result.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
