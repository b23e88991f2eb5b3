"""``make cost RPS=.. EVENT_BYTES=.. BATCH=..``: monthly cost and a capacity plan for a given load.

Same model (``loadtest.bench.model``) and price file (``prices.json``) as ``make bench``. The pipeline's
own facts (envelope and item overheads, log bytes, handler durations) come from the last
``make bench`` (``loadtest/out/bench.json``) when there is one, else from the documented defaults.
RPS is HTTP requests per second; each request carries BATCH events of EVENT_BYTES each.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import orjson

from loadtest.bench import model

BENCH_JSON = Path(__file__).resolve().parents[1] / "out" / "bench.json"
SECONDS_PER_MONTH = model.HOURS_PER_MONTH * 3600
SHARD_RECORDS_PER_S = 1000  # Kinesis provisioned shard write limits
SHARD_BYTES_PER_S = 1024 * 1024
DDB_TABLE_WRU_PER_S = 40_000  # default per-table on-demand throughput quota


def load_profile(path: Path = BENCH_JSON) -> tuple[model.Profile, str]:
    if path.exists():
        measured = orjson.loads(path.read_bytes()).get("profile", {})
        return model.Profile.from_dict(measured), f"measured by make bench ({path.name})"
    return model.Profile(), "defaults in loadtest/bench/model.py (run make bench to measure)"


def plan(rps: float, event_bytes: int, batch: int, profile: model.Profile, prices: dict[str, float],
         kinesis_mode: str = "provisioned") -> dict[str, Any]:  # fmt: skip
    """Monthly bill and capacity for ``rps`` requests/s of ``batch`` events of ``event_bytes``."""
    events_per_s = rps * batch
    usage = model.estimate_usage(profile, event_bytes, batch, records=1000, rate_per_second=events_per_s)
    monthly_events = events_per_s * SECONDS_PER_MONTH
    envelope = event_bytes + profile.envelope_overhead_bytes
    shards = max(
        1,
        math.ceil(events_per_s / SHARD_RECORDS_PER_S),
        math.ceil(events_per_s * envelope / SHARD_BYTES_PER_S),
    )
    variable = model.usage_lines(usage.per(max(1, round(monthly_events))), prices, kinesis_mode)
    fixed = model.fixed_monthly_lines(prices, kinesis_mode, shards)
    per_s = usage.per(1000)
    scale = events_per_s / 1000

    def concurrency(fn: str) -> float:
        # Little's law: invocations/s x seconds per invocation.
        inv = per_s.lambda_invocations.get(fn, 0.0) * scale
        gbs = per_s.lambda_gb_seconds.get(fn, 0.0) * scale
        return gbs / (profile.memory_mb / 1024) if inv else 0.0

    wru_per_s = per_s.dynamodb_wru * scale
    return {
        "events_per_second": events_per_s,
        "events_per_month": monthly_events,
        "lines": variable + fixed,
        "total": model.total(variable) + model.total(fixed),
        "per_million": model.total(variable) / monthly_events * 1e6 if monthly_events else 0.0,
        "capacity": {
            "kinesis": f"{shards} provisioned shard(s)" if kinesis_mode == "provisioned" else "on-demand stream",
            "ingest concurrency": concurrency("ingest"),
            "worker concurrency": concurrency("worker"),
            "worker records per invocation": model.effective_batch(events_per_s, profile.worker_batch_size,
                                                                  profile.worker_window_seconds),
            "dynamodb WRU/s": wru_per_s,
            "dynamodb table quota used": wru_per_s / DDB_TABLE_WRU_PER_S,
        },
    }  # fmt: skip


def render(args: argparse.Namespace, result: dict[str, Any], source: str, profile: model.Profile) -> str:
    out = [
        f"Load: {args.rps:g} requests/s x {args.batch} event(s) of {args.event_bytes} bytes = "
        f"{result['events_per_second']:,.0f} events/s, {result['events_per_month']:,.0f} events/month (730 h)",
        f"Pipeline profile: {source}",
        "",
        f"{'line item':34} {'quantity':>18} {'unit':16} {'USD/month':>12}",
    ]
    for line in result["lines"]:
        out.append(f"{line.item:34} {line.quantity:>18,.1f} {line.unit:16} {line.usd:>12,.2f}")
    out.append(f"{'TOTAL':34} {'':>18} {'':16} {result['total']:>12,.2f}")
    out.append(f"variable cost per million events: ${result['per_million']:.3f}")
    out.append("\nCapacity plan")
    for name, value in result["capacity"].items():
        shown = f"{value:,.2f}" if isinstance(value, float) else str(value)
        if name == "dynamodb table quota used":
            shown = f"{value:.1%} of {DDB_TABLE_WRU_PER_S:,} WRU/s"
        out.append(f"  {name:32} {shown}")
    out.append(
        "\nAssumptions: us-east-1 list prices from loadtest/bench/prices.json, no free tier, first tiers; "
        f"arm64 Lambda at {profile.memory_mb} MB; Lambda durations measured locally against the emulator "
        "(AWS round trips differ); worker batches fill up to the batching window (core/wiring.json); "
        f"{profile.platform_log_bytes_per_invocation} B of Lambda START/END/REPORT lines per invocation; "
        "no data transfer out, no DLQ traffic, no retries, no storage (DynamoDB, S3, CloudWatch retention)."
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rps", type=float, required=True, help="HTTP requests per second")
    parser.add_argument("--event-bytes", type=int, default=1024, help="bytes per event")
    parser.add_argument("--batch", type=int, default=1, help="events per request")
    parser.add_argument("--kinesis", choices=["provisioned", "on-demand"], default="provisioned")
    args = parser.parse_args(argv)
    if args.rps <= 0 or args.batch < 1 or args.event_bytes < 1:
        parser.error("--rps must be > 0, --batch and --event-bytes >= 1")
    profile, source = load_profile()
    result = plan(args.rps, args.event_bytes, args.batch, profile, model.load_prices(), args.kinesis)
    print(render(args, result, source, profile))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
