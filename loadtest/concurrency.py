"""``python -m loadtest.concurrency``: the same burst at worker maximum concurrency 1, 2, 4 and 8.

Each setting gets a fresh local stack (``--worker-concurrency N``) with a per-record worker cost
(``SIMULATED_COST_MS_PER_KCHAR``), so the worker, not the emulator, is what the burst has to get
through. The output is the table an operator needs to choose ``maximum_concurrency`` (drain time,
peak backlog, drain rate, lag p95 per setting) and a PNG: backlog over time per setting, and drain
time against concurrency.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from typing import Any

import orjson

from loadtest import measures
from loadtest.run import DEFAULT_OUT, RunOptions, RunResult, execute, read_phases, say, stop_on_sigterm

COLUMNS = (
    ("worker_concurrency", "concurrency"), ("drain_after_last_spike_s", "drain after spike (s)"),
    ("peak_backlog", "peak backlog"), ("drain_rate_msgs_per_s", "drain rate (msg/s)"),
    ("accepted_per_second", "accepted/s"), ("lag_p95_s", "lag p95 (s)"), ("lag_p99_s", "lag p99 (s)"),
    ("lost_records", "lost"), ("dlq_depth", "DLQ"),
)  # fmt: skip


def experiment_options(concurrency: int, cost: float, quick: bool, out: Path) -> RunOptions:
    """One burst: quiet baseline, a 10x spike, then baseline while the queue drains."""
    return RunOptions(
        shape="burst",
        users=10,
        spike_factor=10,
        rps_per_user=1.0,
        baseline_seconds=8 if quick else 15,
        spike_seconds=8 if quick else 15,
        cycles=1,
        tenants=4,
        sample_every=2,  # few requests per setting: sample more of them for the lag percentiles
        max_error_rate=0.01,
        max_p95_ms=30000.0,  # latency is not what this experiment judges; errors and losses are
        drain_timeout=150 if quick else 240,
        worker_concurrency=concurrency,
        stack_env={"SIMULATED_COST_MS_PER_KCHAR": str(cost)},
        out=out / f"concurrency-{concurrency}",
        quiet=True,
    )


def plot(results: list[RunResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=80, width_ratios=(1.6, 1))
    for result in results:
        c = result.summary["worker_concurrency"]
        phases = read_phases(result.out)
        t0 = phases[0][0] if phases else result.load_started
        xs = [t - t0 for t, _ in result.backlog]
        left.plot(xs, [v for _, v in result.backlog], label=f"concurrency {c}", linewidth=1.6)
    first = results[0]
    phases = read_phases(first.out)
    if phases:
        t0 = phases[0][0]
        for i, (t, name) in enumerate(phases):
            if name == "spike":
                end = phases[i + 1][0] if i + 1 < len(phases) else first.load_ended
                left.axvspan(t - t0, end - t0, color="0.9", zorder=0, label="spike")
    left.set(xlabel="seconds since the load started", ylabel="queue backlog (messages)",
             title="Backlog through one burst")  # fmt: skip
    left.legend(fontsize=8)
    left.grid(alpha=0.3)

    cs = [r.summary["worker_concurrency"] for r in results]
    drains = [r.summary.get("drain_after_last_spike_s") or float("nan") for r in results]
    right.plot(cs, drains, marker="o", color="tab:red")
    for c, d in zip(cs, drains, strict=True):
        right.annotate(f"{d:.0f}s", (c, d), textcoords="offset points", xytext=(4, 6), fontsize=8)
    right.set_xscale("log", base=2)
    right.set_xticks(cs, [str(c) for c in cs])
    right.set(xlabel="worker maximum concurrency", ylabel="drain time after the spike (s)",
              title="Drain time vs concurrency", ylim=(0, None))  # fmt: skip
    right.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest.concurrency", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--quick", action="store_true", help="shorter phases (about half the time)")
    p.add_argument("--settings", default="1,2,4,8", help="comma-separated maximum concurrency values")
    p.add_argument("--cost-ms-per-kchar", type=float, default=30.0,
                   help="worker cost per 1000 characters of record (SIMULATED_COST_MS_PER_KCHAR)")  # fmt: skip
    p.add_argument("--out", type=Path, help="output folder (default: loadtest/out/concurrency-<timestamp>)")
    args = p.parse_args(argv)
    settings = [int(s) for s in args.settings.split(",") if s.strip()]
    stop_on_sigterm()
    out = args.out or DEFAULT_OUT / time.strftime("concurrency-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: list[RunResult] = []
    try:
        for c in settings:
            say(f"concurrency {c}: starting a stack, running the burst, waiting for the drain ...")
            result = execute(experiment_options(c, args.cost_ms_per_kchar, args.quick, out))
            result.summary["worker_concurrency"] = c
            results.append(result)
            s = result.summary
            say(f"  drain {s.get('drain_after_last_spike_s')}s, peak backlog {s.get('peak_backlog')}, "
                 f"lost {s.get('lost_records')}  ({time.monotonic() - started:.0f}s elapsed)")  # fmt: skip
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    rows = [[r.summary.get(key) for key, _ in COLUMNS] for r in results]
    with open(out / "concurrency.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([key for key, _ in COLUMNS])
        writer.writerows(rows)
    report: dict[str, Any] = {
        "cost_ms_per_kchar": args.cost_ms_per_kchar,
        "quick": args.quick,
        "runs": [r.summary for r in results],
    }
    (out / "concurrency.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    plot(results, out / "concurrency.png")
    say("")
    say(measures.table(rows, [label for _, label in COLUMNS]))
    failed = [r for r in results if r.exit_code]
    for r in failed:
        say(f"concurrency {r.summary['worker_concurrency']}: " + "; ".join(r.summary["failures"]))
    say(f"\nplot: {out / 'concurrency.png'}\ntotal {time.monotonic() - started:.0f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
