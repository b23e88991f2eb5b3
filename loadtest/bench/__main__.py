"""``make bench``: speed and cost per million events, each against a baseline measured in the same run.

Prints the tables (CPU, cold start, end to end, cost, redaction) and the targets and writes everything
to ``loadtest/out/bench.json`` (whose ``profile`` ``make cost`` plans with). ``--quick`` trims
repetitions and record counts; ``--skip-e2e`` runs only the CPU, cold-start and redaction parts;
``--skip-burst`` leaves out the 20,000-record burst (``burst.py``). With the end-to-end runs comes
quota enforcement's cost (``quota.py``), as a share of their cost per million. Absolute times depend on the
machine; the ratios, measured side by side, are the figures to read.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from loadtest import cost
from loadtest.bench import burst, coldstart, cpu, e2e, protocols, quota, redaction, workload
from loadtest.measures import cell, table

OUT = Path(__file__).resolve().parents[1] / "out" / "bench.json"
MEMORY_MB = 512  # infra/variables.tf lambda_memory_mb default (rollup is 256; counted at 512 here)
TARGETS = {
    "cpu_batch_ratio": 4.0,
    "protocol_cpu_ratio": 4.0,
    "cold_start_ratio": 1.3,
    "usd_per_million_1": 2.10,
    "usd_per_million_100": 0.85,
    "redaction_recall_min": 0.99,
    "redaction_false_markers": 0,
    "redaction_time_ratio": 1.0,
    "burst_share_of_raw": 0.6,
    "quota_added_share_1": 0.05,  # issue 16: quota enforcement adds at most 5% at 1 event per request
    "quota_added_share_100": 0.02,  # and 2% at 100
}


def usage_from_run(
    run: dict[str, Any], memory_mb: int = MEMORY_MB, platform_bytes: int | None = None
) -> cost.Usage:
    """The cost model's usage from what one e2e run counted."""
    if platform_bytes is None:
        platform_bytes = cost.Profile().platform_log_bytes_per_invocation
    aws, inv, seconds = run["aws"], run["invocations"], run["handler_seconds"]
    batch, requests = run["batch"], run["requests"]
    invocations = {"ingest": float(inv.get("http_requests", 0)),
                   "worker": float(inv.get("worker", {}).get("invocations", 0))}  # fmt: skip
    consumers = sum(v["invocations"] for k, v in inv.items() if k.startswith("consumer:"))
    if consumers:
        invocations["consumers"] = float(consumers)
    body = len(workload.event_body(batch)) if batch > 1 else workload.EVENT_BYTES

    def units(prefix: str) -> float:
        return float(sum(v["units"] for k, v in aws.items() if k.startswith(prefix)))

    return cost.Usage(
        records=run["records"], api_requests=requests, api_units=requests * cost.api_units(body),
        lambda_invocations=invocations,
        lambda_gb_seconds={fn: seconds.get(fn, 0.0) * memory_mb / 1024 for fn in invocations},
        # Receives that found the queue empty are the pollers idling: on AWS the event source mapping's
        # long polls cost the same per month whatever the traffic, so they are a fixed cost (counted,
        # and shown in the usage table), not a per-event one. Over a short run they would dominate.
        sqs_requests=units("sqs.") - float(aws.get("sqs.ReceiveMessage", {}).get("empty", 0)),
        kinesis_put_units=units("kinesis.Put"), dynamodb_wru=units("dynamodb."),
        log_bytes=sum(run.get("log_bytes", {}).values()) + platform_bytes * sum(invocations.values()),
        s3_puts=float(aws.get("s3.PutObject", {}).get("calls", 0)),
    )  # fmt: skip


def report(result: dict[str, Any]) -> str:
    out = [f"sluice benchmark - {result['machine']} - {result['date']}"]
    out.append(table(
        [[r["case"], *r["us_per_record"].values(), r["ratio_to_floor"], r["baseline_ratio_to_floor"],
          r["ratio_to_baseline"]] for r in result["cpu"]],
        ["case", "sluice us/rec", "floor us/rec", "baseline us/rec", "x floor", "baseline x floor", "x baseline"],
        "1. Ingest CPU per record, pure path (parse + validate + normalize + serialize), medians",
    ))  # fmt: skip
    out.append(table(
        [[r["candidate"], r["import_ms"], r.get("own_ms") or "", r["process_ms"], r["ratio_to_floor"],
          "{:.2f}-{:.2f}".format(*r["ratio_iqr"]) if r.get("ratio_iqr") else "", r["sys_modules"]]
         for r in result["cold_start"]["rows"]],
        ["candidate", "import ms", "our packages ms", "process ms", "x import boto3", "middle half", "modules"],
        "2. Cold start: import time in a fresh interpreter (median of subprocesses)",
    ))  # fmt: skip
    if result.get("protocols"):
        out.append(table(
            [[r["case"], r["body_bytes"], *r["us_per_record"].values(), r["ratio_to_floor"]]
             for r in result["protocols"]],
            ["case", "body bytes", "adapter us/rec", "floor us/rec", "x floor"],
            "5. Log-shipper protocols, CPU per record (decode + orjson.dumps of each record), medians",
        ))  # fmt: skip
    e = result.get("e2e")
    if e:
        runs = e["runs"]
        rows: list[list[Any]] = []
        for op in sorted({op for run in runs.values() for op in run["aws"]}):
            per_k = [{k: v * 1000 / run["records"] for k, v in run["aws"].get(op, {"calls": 0, "units": 0}).items()}
                     for run in runs.values()]  # fmt: skip
            rows.append([op, *[f"{s['calls']:.1f} / {s['units']:.1f}" for s in per_k]])
        invocations = [run["invocations"]["http_requests"] + sum(v.get("invocations", 0) for v in
                       run["invocations"].values() if isinstance(v, dict)) for run in runs.values()]  # fmt: skip
        logs = [sum(run.get("log_bytes", {}).values()) for run in runs.values()]
        for label, counts in (("lambda invocations", invocations), ("log bytes", logs)):
            rows.append([label, *[f"{n * 1000 / r['records']:,.1f}" for n, r in zip(counts, runs.values(), strict=True)]])  # fmt: skip
        out.append(table(rows, ["operation", *runs], "3. AWS usage per 1,000 records (calls / billing units; "
                                                     "logs: handler bytes, before Lambda's own lines)"))  # fmt: skip
        costs = result["cost_per_million"]
        items = list(dict.fromkeys(line["item"] for c in costs.values() for line in c["lines"]))
        rows = [[item, *[next((ln["usd"] for ln in costs[n]["lines"] if ln["item"] == item), 0.0) for n in runs]]
                for item in items]  # fmt: skip
        rows.append(["TOTAL per million events", *[costs[n]["total"] for n in runs]])
        rows.append(["x baseline (same batch)", *[costs[n].get("ratio_to_baseline", 1.0) for n in runs]])
        out.append(table(rows, ["line item", *runs], "4. Cost per million 1 KB events, USD (us-east-1, prices.json; "
                                                     "Kinesis provisioned: shard-hours are fixed, see make cost)"))  # fmt: skip
        rows = [[n, run["records"], run["records_per_second"]] for n, run in runs.items()]
        rows.append(
            [
                "emulator raw capacity (same calls, no handlers)",
                e["raw"]["records"],
                e["raw"]["records_per_second"],
            ]
        )
        out.append(
            table(rows, ["run", "records", "records/s"], "6. Local end-to-end throughput, POST -> DynamoDB")
        )
        out.append(f"   pipeline (100/request) uses {result['e2e_share_of_raw']:.0%} of the emulator's raw capacity; "
                   f"baseline (100/request) uses {result['baseline_share_of_raw']:.0%}.")  # fmt: skip
    q = result.get("quota")
    if q:
        out.append(table(quota.rows(q), quota.HEADER,
                         "11. Quota enforcement (deployed default quotas): DynamoDB calls on the quota items, "
                         "USD, and the share of table 4's total it adds"))  # fmt: skip
    b = result.get("burst")
    if b:
        out.append(table(burst.rows(b), ["measure", "value"],
                         f"10. Burst: {b['records']:,} records (80% log lines, 20% 1-8 KB events), "
                         f"{b['clients']} keep-alive clients, then drained"))  # fmt: skip
    r = result.get("redaction")
    if r:
        recall_rows, precision_rows, speed_rows = redaction.rows(r)
        out.append(table(recall_rows, ["category", "positives", "recalled", "recall", "baseline recall"],
                         "7. Redaction recall per category (tests/fixtures/redaction; IP with the setting on; "
                         "baseline: today's rules before issue 15)"))  # fmt: skip
        out.append(table(precision_rows, ["false markers on", "sluice", "baseline"],
                         "8. Redaction precision: markers whose replaced text is not of their category"))  # fmt: skip
        if speed_rows:
            out.append(table(speed_rows, ["figure", "sluice", "baseline", "x baseline"],
                             "9. Redaction speed on the shared corpus (best of alternating rounds)"))  # fmt: skip
    out.append("\nTargets")
    for name, t in result["targets"].items():
        op = ">=" if t.get("higher") else "<="
        out.append(
            f"  {'MET   ' if t['met'] else 'MISSED'}  {name}: {cell(t['value'])} (target {op} {t['target']})"
        )
        if t.get("note"):
            out.append(f"          {t['note']}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and records")
    parser.add_argument(
        "--skip-e2e", action="store_true", help="only the CPU and cold-start benchmarks (no burst)"
    )
    parser.add_argument("--skip-burst", action="store_true", help="leave out the 20,000-record burst")
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
    print("protocol adapters ...", file=sys.stderr)
    result["protocols"] = protocols.run(rounds=5 if quick else 9, budget_s=0.1 if quick else 0.15)
    print("cold start ...", file=sys.stderr)
    result["cold_start"] = coldstart.run(samples=5 if quick else 11)
    print("redaction ...", file=sys.stderr)
    result["redaction"] = redaction.run(rounds=3 if quick else 7)
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
        prices = cost.load_prices()
        costs: dict[str, Any] = {}
        for name, run in runs.items():
            usage = usage_from_run(run)
            lines = cost.per_million(usage, prices)
            costs[name] = {"usage_per_1000": usage.per(1000).to_dict(), "lines": [ln.__dict__ for ln in lines],
                           "total": cost.total(lines)}  # fmt: skip
        for batch in ("1/request", "100/request"):
            costs[f"sluice, {batch}"]["ratio_to_baseline"] = (
                costs[f"sluice, {batch}"]["total"] / costs[f"baseline, {batch}"]["total"])  # fmt: skip
        result["cost_per_million"] = costs
        raw = pipe["raw"]["records_per_second"]
        result["e2e_share_of_raw"] = runs["sluice, 100/request"]["records_per_second"] / raw
        result["baseline_share_of_raw"] = runs["baseline, 100/request"]["records_per_second"] / raw
        profile.update(_profile_from(runs["sluice, 1/request"], runs["sluice, 100/request"]))
        print("quota enforcement ...", file=sys.stderr)
        result["quota"] = quota.run_child()
        result["quota"]["added_share"] = quota.added_share(
            result["quota"], {name: c["total"] for name, c in costs.items()}
        )
    if not (args.skip_e2e or args.skip_burst):
        print("burst ...", file=sys.stderr)
        result["burst"] = burst.run_child(records=4000 if quick else burst.RECORDS)
    result["profile"] = profile
    result["targets"] = _targets(result)
    result["seconds"] = time.monotonic() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(report(result))
    print(f"\n{result['seconds']:.0f} s; figures written to {args.out}")
    return 0


def _profile_from(single: dict[str, Any], batched: dict[str, Any]) -> dict[str, Any]:
    """The measured facts ``make cost`` plans with (see ``loadtest.cost.Profile``)."""

    def per(run: dict[str, Any], fn: str) -> float:
        calls = run["handler_calls"].get(fn, 0)
        return run["handler_seconds"].get(fn, 0.0) * 1000 / calls if calls else 0.0

    def logs(run: dict[str, Any], keys: tuple[str, ...], fn: str) -> float:
        # EMF lines do not name their function; they are put on ingest, which emits them per request.
        n = run["handler_calls"].get(fn, 0)
        return sum(v for k, v in run.get("log_bytes", {}).items() if k in keys) / n if n else 0.0

    profile: dict[str, Any] = {
        "ingest_ms_base": per(single, "ingest"),
        "ingest_ms_per_record": max(0.0, (per(batched, "ingest") - per(single, "ingest")) / 99),
        "ingest_log_bytes_per_request": round(logs(single, ("log:ingest", "metrics:?", "other"), "ingest")),
        "worker_log_bytes_per_batch": round(logs(single, ("log:worker",), "worker")),
        "consumer_log_bytes_per_batch": round(logs(single, ("log:archiver", "log:rollup"), "consumers")),
    }
    if batched["item_bytes"]:
        # With compact storage the measured items are gzipped bodies, not event + overhead: kept as a
        # fact to show, while the model sizes items itself (cost.stored_item_bytes).
        profile["measured_item_bytes_per_record"] = round(
            sum(batched["item_bytes"].values()) / batched["records"]
        )
    return profile


def _targets(result: dict[str, Any]) -> dict[str, Any]:
    """Each target against its figure, one row per case; ``note`` says what a figure depends on."""
    out: dict[str, Any] = {}
    for row in result["cpu"]:
        if row["records"] > 1 and not row.get("ingest_redaction"):  # redaction is its own figure
            out[f"CPU per record, {row['case']}, x floor"] = {
                "value": row["ratio_to_floor"], "target": TARGETS["cpu_batch_ratio"],
                "note": "floor: orjson.loads + orjson.dumps of the same bytes" if "JSON" in row["case"]
                else "floor: orjson.dumps of each line (a text body has no JSON to load)",
            }  # fmt: skip
    for row in result.get("protocols", []):
        out[f"CPU per record, {row['case']}, x floor"] = {
            "value": row["ratio_to_floor"], "target": TARGETS["protocol_cpu_ratio"],
            "note": "floor: orjson.loads + orjson.dumps of each LogRecord" if "JSON" in row["case"]
            else "floor: ParseFromString of the same bytes (after snappy) + orjson.dumps of each line",
        }  # fmt: skip
    rows = {r["candidate"]: r for r in result["cold_start"]["rows"]}
    for name, row in rows.items():
        if name.startswith("handler:"):
            libraries = rows.get(f"{coldstart.LIBRARIES_ROW}{row['modules'][0]}")
            note = ""
            if libraries and row.get("own_ms") is not None:
                note = (f"middle half of the rounds: {row['ratio_iqr'][0]:.2f}-{row['ratio_iqr'][1]:.2f}x; its "
                        f"libraries alone: {libraries['ratio_to_floor']:.2f}x; our packages: {row['own_ms']:.0f} ms")  # fmt: skip
            out[f"cold start, {name.removeprefix('handler: ')}, x import boto3"] = {
                "value": row["ratio_to_floor"], "target": TARGETS["cold_start_ratio"], "note": note}  # fmt: skip
    for n, key in (("1", "usd_per_million_1"), ("100", "usd_per_million_100")):
        c = result.get("cost_per_million", {}).get(f"sluice, {n}/request")
        if c:
            durations = sum(line["usd"] for line in c["lines"] if line["item"].endswith("duration"))
            out[f"USD per million, {n} event{'s' if n != '1' else ''}/request"] = {
                "value": c["total"], "target": TARGETS[key],
                "note": f"of which Lambda duration measured against the emulator: {durations:.4f}; "
                        f"without it: {c['total'] - durations:.4f}",
            }  # fmt: skip
    r = result.get("redaction")
    if r:
        out["redaction recall, lowest category"] = {
            "value": redaction.min_recall(r), "target": TARGETS["redaction_recall_min"], "higher": True,
            "note": "labelled corpus tests/fixtures/redaction; IP addresses with the setting on"}  # fmt: skip
        out["redaction false markers, hard negatives + shared corpus"] = {
            "value": sum(r["precision"]["today"].values()), "target": TARGETS["redaction_false_markers"],
            "note": "" if r["corpus"] else "shared corpus absent: hard negatives only"}  # fmt: skip
        for key, label in (("json_us_per_kb", "webhook JSON"), ("log_us_per_line", "log lines")):
            if "speed" in r:
                out[f"redaction time, {label}, x today's rules before issue 15"] = {
                    "value": r["speed"]["ratio"][key], "target": TARGETS["redaction_time_ratio"],
                    "note": f"{r['speed']['today'][key]:.1f} vs {r['speed']['baseline'][key]:.1f} us; "
                            f"IP on: {r['speed']['ratio'][key + '_ip']:.2f}x"}  # fmt: skip
    q = result.get("quota")
    for run in q["runs"] if q else []:
        share = q["added_share"].get(str(run["batch"]))
        if share is not None:
            n = run["batch"]
            out[f"quota enforcement, {n} event{'s' if n != 1 else ''}/request, share of USD per million added"] = {
                "value": share, "target": TARGETS[f"quota_added_share_{n}"],
                "note": f"{sum(run['calls_per_1000'].values()):.1f} DynamoDB calls per 1,000 records "
                        f"(model {run['model_calls_per_1000']:.1f}) at {run['requests_per_second']:g} requests/s over "
                        f"{run['ingest_containers']} ingest containers; load average {q['load_average_before'][0]:.1f}",
            }  # fmt: skip
    b = result.get("burst")
    if b:
        out[f"burst of {b['records']:,} mixed records, end-to-end records/s x emulator raw capacity"] = {
            "value": b["share_of_raw"], "target": TARGETS["burst_share_of_raw"], "higher": True,
            "note": f"{b['records_per_second']:.0f} vs {b['raw']['records_per_second']:.0f} records/s; drain "
                    f"{b['drain_seconds']:.0f} s after accepting in {b['accept_seconds']:.0f} s; lag p50/p95 "
                    f"{b['lag_p50_s']}/{b['lag_p95_s']} s; peak RSS {b['peak_rss_mb']} MB; load average "
                    f"{b['load_average_before'][0]:.1f}",
        }  # fmt: skip
    for t in out.values():
        t["met"] = t["value"] >= t["target"] if t.get("higher") else t["value"] <= t["target"]
    return out


if __name__ == "__main__":
    raise SystemExit(main())
