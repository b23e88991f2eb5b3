"""Quota enforcement's cost, measured: its extra DynamoDB calls per 1,000 records and USD per million.

The child (``python -m loadtest.bench.quota --out FILE --state-dir DIR``) runs ``local.runtime.LocalRuntime``
in its own process with the per-tenant quotas of a deployment (``tenant_quota``'s default in
``infra/variables.tf``) and sends one tenant's events at a steady pace, at 1 and at 100 events per
request (``loadtest.tenants.send``: keep-alive clients, open loop), well inside the quota so nothing is
refused. A botocore hook on the process's DynamoDB clients counts every call on the quota items of the
API keys table (leases: ``UpdateItem`` of ``quota-state#<tenant>``; overrides: ``GetItem`` of
``quota#<tenant>``). Priced with ``loadtest/prices.json`` (a lease is 1 WRU, an overrides read half an
RRU), and set against the cost model's figure (``loadtest.cost.quota_overhead``) for the same request
rate per ingest container. ``make bench`` divides the USD by its own end-to-end cost per million at the
same batch size, measured in the same run (row 11 and the Targets block).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from loadtest import cost

ROOT = Path(__file__).resolve().parents[2]
# (events per request, requests per second per client, clients, seconds)
RUNS = ((1, 5.0, 4, 12.0), (100, 1.0, 4, 12.0))
QUOTA_VARIABLES = {
    "records_per_second": "TENANT_RECORDS_PER_SECOND", "records_burst": "TENANT_RECORDS_BURST",
    "bytes_per_second": "TENANT_BYTES_PER_SECOND", "bytes_burst": "TENANT_BYTES_BURST",
    "requests_per_second": "TENANT_REQUESTS_PER_SECOND", "requests_burst": "TENANT_REQUESTS_BURST",
}  # fmt: skip


def deployed_quota(variables_tf: Path = ROOT / "infra" / "variables.tf") -> dict[str, str]:
    """The ingest function's quota variables at ``tenant_quota``'s Terraform default."""
    text = variables_tf.read_text()
    block = text[text.index('variable "tenant_quota"') :]
    default = block[block.index("default = {") : block.index("}", block.index("default = {"))]
    values = dict(re.findall(r"(\w+)\s*=\s*([0-9.]+)", default))
    return {variable: values[name] for name, variable in QUOTA_VARIABLES.items()}


class QuotaCallCounter:
    """Calls on the quota items (``quota#...``, ``quota-state#...``) of one table, by operation."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def attach(self, client: Any) -> None:
        events = client.meta.events
        events.register("before-parameter-build.dynamodb", self._count, unique_id=f"quota-{id(self)}")
        events.register("after-call.dynamodb", self._answered, unique_id=f"quota-answer-{id(self)}")

    def _count(self, model: Any, params: dict[str, Any], context: Any = None, **_: Any) -> None:
        key = str(params.get("Key", {}).get("key_hash", {}).get("S", ""))
        if params.get("TableName") == self.table and key.startswith("quota"):
            if context is not None:
                context["sluice_quota_call"] = True
            with self._lock:
                self.calls[model.name] += 1

    def _answered(self, parsed: dict[str, Any], context: Any = None, **_: Any) -> None:
        """A lease that lost the race to another container's write (planned again: one more call)."""
        code = (parsed.get("Error") or {}).get("Code")
        if context and context.get("sluice_quota_call") and code == "ConditionalCheckFailedException":
            with self._lock:
                self.calls["conflicts"] += 1

    def take(self) -> dict[str, int]:
        with self._lock:
            out = dict(self.calls)
            self.calls.clear()
        return out


def usd_per_million(calls_per_1000: Mapping[str, float], prices: Mapping[str, float]) -> float:
    """The measured calls per 1,000 records, priced as ``cost.quota_calls_usd_per_million`` prices them."""
    return cost.quota_calls_usd_per_million(
        calls_per_1000.get("UpdateItem", 0.0), calls_per_1000.get("GetItem", 0.0), prices
    )


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """The paced runs against a fresh in-process stack with quotas on; in the child."""
    from core import aws
    from loadtest import shapes, tenants
    from loadtest.run import KeepAliveClient
    from local import runtime as rt
    from local.emulator import free_port

    quota = deployed_quota()
    options = rt.RuntimeOptions(port=free_port(), emulator_port=free_port(), prefix="bench-quota",
                                state_dir=Path(args.state_dir), extra_env=quota)  # fmt: skip
    prices = cost.load_prices()
    runs = []
    with rt.LocalRuntime(options) as runtime:
        stack = runtime.stack
        assert stack is not None
        client = KeepAliveClient(runtime.api_url)
        counter = QuotaCallCounter(stack.api_keys_table_name)
        for k, (batch, rate, clients, seconds) in enumerate(RUNS):
            sender = tenants.Sender(f"bench-quota-{batch}", tenants.QUIET, batch, rate, clients, ("steady",))
            bodies = tenants.request_bodies(sender, 8, seed=k)
            warm = tenants.send(
                client, sender, None, bodies[:1], shapes.steady(1, 1, 2 / rate), time.time(), k
            )
            assert warm and all(o.status == 202 for o in warm), warm
            for made in aws.client.made("dynamodb"):
                counter.attach(made)
            counter.take()
            created = runtime.gateway.handler.created
            schedule = shapes.steady(clients, clients, seconds)
            started = time.time() + 0.2
            with ThreadPoolExecutor(clients) as pool:
                futures = [pool.submit(tenants.send, client, sender, None, bodies, schedule, started, 100 * k + i)
                           for i in range(clients)]  # fmt: skip
                outcomes = [o for f in futures for o in f.result()]
            calls = counter.take()
            records = sum(o.accepted for o in outcomes)
            statuses = Counter(o.status for o in outcomes)
            per_1000 = (
                {op: n * 1000 / records for op, n in calls.items() if op != "conflicts"} if records else {}
            )
            containers = max(1, runtime.gateway.handler.created)
            model = cost.quota_overhead(batch, len(outcomes) / seconds / containers, prices)
            runs.append({
                "batch": batch, "requests": len(outcomes), "records": records,
                "statuses": {str(s): n for s, n in statuses.items()}, "seconds": seconds,
                "requests_per_second": round(len(outcomes) / seconds, 2), "ingest_containers": containers,
                "containers_before": created, "calls": calls, "calls_per_1000": per_1000,
                "usd_per_million": usd_per_million(per_1000, prices),
                "model_calls_per_1000": model.lease_calls_per_1000 + model.override_reads_per_1000,
                "model_usd_per_million": model.usd_per_million,
            })  # fmt: skip
    return {"quota": quota, "runs": runs, "load_average": os.getloadavg()}


def added_share(result: Mapping[str, Any], totals: Mapping[str, float]) -> dict[str, float]:
    """USD the quota calls add per million, as a share of sluice's total at the same batch size."""
    out = {}
    for run in result["runs"]:
        total = totals.get(f"sluice, {run['batch']}/request")
        if total:
            out[str(run["batch"])] = run["usd_per_million"] / total
    return out


def rows(result: Mapping[str, Any]) -> list[list[Any]]:
    """One row per batch size for the printed report."""
    shares = result.get("added_share", {})
    return [
        [f"{r['batch']}/request", f"{r['requests_per_second']:g} req/s over {r['ingest_containers']} containers",
         f"{r['calls'].get('UpdateItem', 0)} ({r['calls'].get('conflicts', 0)} lost a race) + "
         f"{r['calls'].get('GetItem', 0)}", round(sum(r["calls_per_1000"].values()), 2), round(r["model_calls_per_1000"], 2),
         r["usd_per_million"], r["model_usd_per_million"],
         "-" if str(r["batch"]) not in shares else f"{shares[str(r['batch'])]:.2%}"]
        for r in result["runs"]
    ]  # fmt: skip


HEADER = [
    "run",
    "pace",
    "leases + overrides reads",
    "calls / 1,000 rec",
    "model",
    "USD / million",
    "model USD",
    "added",
]


def run_child(timeout: float = 300) -> dict[str, Any]:
    """The runs in a fresh interpreter; their figures."""
    with tempfile.TemporaryDirectory(prefix="sluice-quota-") as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "loadtest.bench.quota", "--out", str(out), "--state-dir", tmp]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
        env["PYTHONPATH"] = str(ROOT)
        load = os.getloadavg()
        proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"quota bench failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        result: dict[str, Any] = orjson.loads(out.read_bytes())
    result["load_average_before"] = load
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", help="child mode: write the figures here (with --state-dir)")
    parser.add_argument("--state-dir")
    parser.add_argument("--bench-json", type=Path, default=ROOT / "loadtest" / "out" / "bench.json",
                        help="standalone: the make bench result whose cost per million the share is of")  # fmt: skip
    args = parser.parse_args(argv)
    if args.out:
        Path(args.out).write_bytes(orjson.dumps(measure(args), option=orjson.OPT_INDENT_2))
        return 0
    from loadtest.measures import table

    result = run_child()
    if args.bench_json.exists():
        bench = orjson.loads(args.bench_json.read_bytes())
        totals = {name: c["total"] for name, c in bench.get("cost_per_million", {}).items()}
        result["added_share"] = added_share(result, totals)
        print(f"shares of the totals in {args.bench_json} ({bench.get('date')})")
    print(table(rows(result), HEADER, "Quota enforcement's DynamoDB calls (deployed default quotas)"))
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*result["load_average_before"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
