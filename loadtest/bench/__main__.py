"""``make bench``: speed and cost per million events, each against a baseline measured in the same run.

Prints the tables and writes everything to ``loadtest/out/bench.json``. ``--quick`` trims repetitions
and record counts (about a minute); the default takes a few minutes on two shared cores.
Absolute times depend on the machine; the ratios, measured side by side, are the figures to read.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from loadtest.bench import coldstart, cpu, e2e, model, workload

OUT = Path(__file__).resolve().parents[1] / "out" / "bench.json"
MEMORY_MB = 512  # infra/variables.tf lambda_memory_mb default (rollup is 256; counted at 512 here)
TARGETS = {
    "cpu_batch_ratio": 4.0,
    "cold_start_ratio": 1.3,
    "usd_per_million_1": 2.10,
    "usd_per_million_100": 0.85,
}


def usage_from_run(
    run: dict[str, Any], memory_mb: int = MEMORY_MB, platform_bytes: int | None = None
) -> model.Usage:
    """The cost model's usage from what one e2e run counted."""
    platform_bytes = (
        model.Profile().platform_log_bytes_per_invocation if platform_bytes is None else platform_bytes
    )
    aws = run["aws"]
    inv = run["invocations"]
    batch, requests = run["batch"], run["requests"]
    invocations = {
        "ingest": float(inv.get("http_requests", 0)),
        "worker": float(inv.get("worker", {}).get("invocations", 0)),
    }
    consumers = sum(v["invocations"] for k, v in inv.items() if k.startswith("consumer:"))
    if consumers:
        invocations["consumers"] = float(consumers)
    seconds = run["handler_seconds"]
    body = len(workload.event_body(batch)) if batch > 1 else workload.EVENT_BYTES

    def units(prefix: str) -> float:
        return float(sum(v["units"] for k, v in aws.items() if k.startswith(prefix)))

    return model.Usage(
        records=run["records"],
        api_requests=requests,
        api_units=requests * model.api_units(body),
        lambda_invocations=invocations,
        lambda_gb_seconds={fn: seconds.get(fn, 0.0) * memory_mb / 1024 for fn in invocations},
        # Receives that found the queue empty are the pollers idling: on AWS the event source mapping's
        # long polls cost the same per month whatever the traffic, so they are a fixed cost (counted,
        # and shown in the usage table), not a per-event one. Over a short run they would dominate.
        sqs_requests=units("sqs.") - float(aws.get("sqs.ReceiveMessage", {}).get("empty", 0)),
        kinesis_put_units=units("kinesis.Put"),
        dynamodb_wru=units("dynamodb."),
        log_bytes=sum(run.get("log_bytes", {}).values()) + platform_bytes * sum(invocations.values()),
        s3_puts=float(aws.get("s3.PutObject", {}).get("calls", 0)),
    )


# ---------------------------------------------------------------- printing


def _table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [f"\n{title}", "  ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        lines.append(
            "  ".join(
                c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.4f}"
    return str(value)


def report(result: dict[str, Any]) -> str:
    out = [f"sluice benchmark - {result['machine']} - {result['date']}"]
    out.append(
        _table(
            "1. Ingest CPU per record, pure path (parse + validate + normalize + serialize), medians",
            [
                "case",
                "sluice us/rec",
                "floor us/rec",
                "baseline us/rec",
                "x floor",
                "baseline x floor",
                "x baseline",
            ],
            [
                [
                    r["case"],
                    r["us_per_record"]["pipeline"],
                    r["us_per_record"]["floor"],
                    r["us_per_record"]["baseline"],
                    r["ratio_to_floor"],
                    r["baseline_ratio_to_floor"],
                    r["ratio_to_baseline"],
                ]
                for r in result["cpu"]
            ],
        )
    )
    out.append(
        _table(
            "2. Cold start: import time in a fresh interpreter (median of subprocesses)",
            [
                "candidate",
                "import ms",
                "our packages ms",
                "process ms",
                "x import boto3",
                "middle half",
                "modules",
            ],
            [
                [
                    r["candidate"],
                    r["import_ms"],
                    "" if r.get("own_ms") is None else r["own_ms"],
                    r["process_ms"],
                    r["ratio_to_floor"],
                    "{:.2f}-{:.2f}".format(*r["ratio_iqr"]) if r.get("ratio_iqr") else "",
                    r["sys_modules"],
                ]
                for r in result["cold_start"]["rows"]
            ],
        )
    )
    e = result.get("e2e")
    if e:
        names = list(e["runs"])
        ops = sorted({op for run in e["runs"].values() for op in run["aws"]})
        rows = []
        for op in ops:
            row: list[Any] = [op]
            for name in names:
                run = e["runs"][name]
                stats = run["aws"].get(op, {"calls": 0, "units": 0})
                row.append(
                    f"{stats['calls'] * 1000 / run['records']:.1f} / {stats['units'] * 1000 / run['records']:.1f}"
                )
            rows.append(row)
        for label, key in (("lambda invocations", "invocations"), ("log bytes", "log_bytes")):
            row = [label]
            for name in names:
                run = e["runs"][name]
                if key == "invocations":
                    inv = run["invocations"]
                    n = inv.get("http_requests", 0) + sum(
                        v.get("invocations", 0) for v in inv.values() if isinstance(v, dict)
                    )
                else:
                    n = sum(run.get("log_bytes", {}).values())
                row.append(f"{n * 1000 / run['records']:,.1f}")
            rows.append(row)
        out.append(_table("3. AWS usage per 1,000 records (calls / billing units; logs: handler bytes, before Lambda's own lines)",
                          ["operation", *names], rows))  # fmt: skip
        costs = result["cost_per_million"]
        items = list(dict.fromkeys(line["item"] for c in costs.values() for line in c["lines"]))
        rows = []
        for item in items:
            rows.append(
                [
                    item,
                    *[
                        next((ln["usd"] for ln in costs[n]["lines"] if ln["item"] == item), 0.0)
                        for n in names
                    ],
                ]
            )
        rows.append(["TOTAL per million events", *[costs[n]["total"] for n in names]])
        rows.append(["x baseline (same batch)", *[costs[n].get("ratio_to_baseline", 1.0) for n in names]])
        out.append(_table("4. Cost per million 1 KB events, USD (us-east-1, prices.json; Kinesis provisioned: "
                          "shard-hours are fixed, see make cost)", ["line item", *names], rows))  # fmt: skip
        rows = [[n, e["runs"][n]["records"], e["runs"][n]["records_per_second"]] for n in names]
        rows.append(
            [
                "emulator raw capacity (same calls, no handlers)",
                e["raw"]["records"],
                e["raw"]["records_per_second"],
            ]
        )
        out.append(
            _table("6. Local end-to-end throughput, POST -> DynamoDB", ["run", "records", "records/s"], rows)
        )
        out.append(f"   pipeline (100/request) uses {result['e2e_share_of_raw']:.0%} of the emulator's raw capacity; "
                   f"baseline (100/request) uses {result['baseline_share_of_raw']:.0%}.")  # fmt: skip
    out.append("\nTargets")
    for name, t in result["targets"].items():
        out.append(
            f"  {'MET   ' if t['met'] else 'MISSED'}  {name}: {_fmt(t['value'])} (target <= {t['target']})"
        )
        if t.get("note"):
            out.append(f"          {t['note']}")
    return "\n".join(out)


# ---------------------------------------------------------------- the run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and records (about a minute)")
    parser.add_argument("--skip-e2e", action="store_true", help="only the CPU and cold-start benchmarks")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    quick = args.quick
    started = time.monotonic()
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()} {platform.python_implementation()} {platform.python_version()}",
        "quick": quick,
    }
    print("CPU benchmark ...", file=sys.stderr)
    result["cpu"] = cpu.run(rounds=5 if quick else 11, budget_s=0.1 if quick else 0.2)
    print("cold start ...", file=sys.stderr)
    result["cold_start"] = coldstart.run(samples=5 if quick else 11)
    prices = model.load_prices()
    profile: dict[str, Any] = {"envelope_overhead_bytes": cpu.envelope_overhead_bytes()}
    if not args.skip_e2e:
        small, large = (60, 600) if quick else (200, 2000)
        print("end to end: pipeline ...", file=sys.stderr)
        pipe = e2e.run_child("pipeline", [(1, small), (100, large)], raw_records=large)
        print("end to end: baseline ...", file=sys.stderr)
        base = e2e.run_child("baseline", [(1, small // 2), (100, large // 4)])
        runs = {
            "sluice, 1/request": pipe["runs"][0], "sluice, 100/request": pipe["runs"][1],
            "baseline, 1/request": base["runs"][0], "baseline, 100/request": base["runs"][1],
        }  # fmt: skip
        result["e2e"] = {"runs": runs, "raw": pipe["raw"]}
        costs: dict[str, Any] = {}
        for name, run in runs.items():
            usage = usage_from_run(run)
            lines = model.per_million(usage, prices)
            costs[name] = {"usage_per_1000": usage.per(1000).to_dict(), "lines": [ln.__dict__ for ln in lines],
                           "total": model.total(lines)}  # fmt: skip
        for batch in ("1/request", "100/request"):
            costs[f"sluice, {batch}"]["ratio_to_baseline"] = (
                costs[f"sluice, {batch}"]["total"] / costs[f"baseline, {batch}"]["total"]
            )
        result["cost_per_million"] = costs
        raw = pipe["raw"]["records_per_second"]
        result["e2e_share_of_raw"] = runs["sluice, 100/request"]["records_per_second"] / raw
        result["baseline_share_of_raw"] = runs["baseline, 100/request"]["records_per_second"] / raw
        profile.update(_profile_from(runs["sluice, 1/request"], runs["sluice, 100/request"]))
    result["profile"] = profile
    result["targets"] = _targets(result)
    result["seconds"] = time.monotonic() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(report(result))
    print(f"\n{result['seconds']:.0f} s; figures written to {args.out}")
    return 0


def _profile_from(single: dict[str, Any], batched: dict[str, Any]) -> dict[str, Any]:
    """The measured facts ``make cost`` plans with (see model.Profile)."""

    def per(run: dict[str, Any], fn: str) -> float:
        calls = run["handler_calls"].get(fn, 0)
        return run["handler_seconds"].get(fn, 0.0) * 1000 / calls if calls else 0.0

    def logs(run: dict[str, Any], keys: tuple[str, ...], fn: str) -> float:
        # EMF lines do not name their function; they are put on ingest, which emits them per request.
        n = run["handler_calls"].get(fn, 0)
        return sum(v for k, v in run.get("log_bytes", {}).items() if k in keys) / n if n else 0.0

    items = sum(batched["item_bytes"].values()) / batched["records"] if batched["item_bytes"] else None
    profile: dict[str, Any] = {
        "ingest_ms_base": per(single, "ingest"),
        "ingest_ms_per_record": max(0.0, (per(batched, "ingest") - per(single, "ingest")) / 99),
        "ingest_log_bytes_per_request": round(logs(single, ("log:ingest", "metrics:?", "other"), "ingest")),
        "worker_log_bytes_per_batch": round(logs(single, ("log:worker",), "worker")),
        "consumer_log_bytes_per_batch": round(logs(single, ("log:archiver", "log:rollup"), "consumers")),
    }
    if items:
        # With compact storage the measured items are gzipped bodies, not event + overhead: kept as a
        # fact to show, while the model sizes items itself (model.stored_item_bytes).
        profile["measured_item_bytes_per_record"] = round(items)
    return profile


def _targets(result: dict[str, Any]) -> dict[str, Any]:
    """Each target against its figure, one row per case; ``note`` says what a figure depends on."""
    out: dict[str, Any] = {}
    for row in result["cpu"]:
        if row["records"] > 1:
            out[f"CPU per record, {row['case']}, x floor"] = {
                "value": row["ratio_to_floor"],
                "target": TARGETS["cpu_batch_ratio"],
                "note": "floor: orjson.loads + orjson.dumps of the same bytes"
                if "JSON" in row["case"]
                else "floor: orjson.dumps of each line (a text body has no JSON to load)",
            }
    for row in result["cold_start"]["rows"]:
        if row["candidate"].startswith("handler:"):
            libraries = next(
                (
                    r
                    for r in result["cold_start"]["rows"]
                    if r["candidate"] == f"{coldstart.LIBRARIES_ROW}{row['modules'][0]}"
                ),
                None,
            )
            out[f"cold start, {row['candidate'].removeprefix('handler: ')}, x import boto3"] = {
                "value": row["ratio_to_floor"],
                "target": TARGETS["cold_start_ratio"],
                "note": f"middle half of the rounds: {row['ratio_iqr'][0]:.2f}-{row['ratio_iqr'][1]:.2f}x; "
                f"its libraries alone: {libraries['ratio_to_floor']:.2f}x; our packages: {row['own_ms']:.0f} ms"
                if libraries and row.get("own_ms") is not None
                else "",
            }
    if "cost_per_million" in result:
        for name, key in (
            ("1 event/request", "usd_per_million_1"),
            ("100 events/request", "usd_per_million_100"),
        ):
            c = result["cost_per_million"][f"sluice, {name.split()[0]}/request"]
            durations = sum(line["usd"] for line in c["lines"] if line["item"].endswith("duration"))
            out[f"USD per million, {name}"] = {
                "value": c["total"],
                "target": TARGETS[key],
                "note": f"of which Lambda duration measured against the emulator: {durations:.4f}; "
                f"without it: {c['total'] - durations:.4f}",
            }
    for t in out.values():
        t["met"] = t["value"] <= t["target"]
    return out


if __name__ == "__main__":
    raise SystemExit(main())
