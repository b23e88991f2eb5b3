"""The cost model and ``make cost RPS=.. EVENT_BYTES=.. BATCH=..``: monthly bill and capacity plan for a load.

Pure functions over plain numbers: billing units, usage per N records, dollars per million events or
per month. ``make bench`` feeds it usage counted against the emulator; ``make cost`` estimates usage
from a load and the pipeline's measured profile (``loadtest/out/bench.json`` from the last
``make bench``, else the defaults in ``Profile``). Prices come from one file, ``prices.json`` beside
this module; nothing here hard-codes a price. RPS is HTTP requests per second; each request carries
BATCH events of EVENT_BYTES each.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from core.partitions import MAX_PARTITIONS

PRICES_PATH = Path(__file__).parent / "prices.json"
BENCH_JSON = Path(__file__).parent / "out" / "bench.json"
KiB = 1024
HOURS_PER_MONTH = 730  # AWS's own monthly convention in its pricing examples
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600

# Billing unit sizes, each from the price's own page (see prices.json).
API_UNIT_BYTES = 512 * KiB  # HTTP API requests are metered in 512 KB increments
SQS_CHUNK_BYTES = 64 * KiB  # every 64 KB chunk of an SQS request's payload is one request
KINESIS_PUT_UNIT_BYTES = 25 * KiB  # PUT payload unit (provisioned mode)
KINESIS_ON_DEMAND_ROUND_BYTES = KiB  # on-demand data-in: each record rounded up to 1 KB
DYNAMODB_WRU_BYTES = KiB  # one write request unit per started 1 KB of item
# Service limits the capacity plan checks against.
SHARD_RECORDS_PER_S = 1000  # Kinesis provisioned shard write limits
SHARD_BYTES_PER_S = 1024 * 1024
DDB_TABLE_WRU_PER_S = 40_000  # default per-table on-demand throughput quota
# One partition key value takes at most about 1,000 write units per second, in either capacity mode
# ("Best practices for designing and using partition keys effectively", DynamoDB developer guide). A
# tenant's items share one value unless its partitions are raised (core/partitions.py); a time-ordered
# sort key keeps its writes on the newest key range, so DynamoDB's split for heat cannot spread them.
DDB_KEY_WRU_PER_S = 1000
# Plan partitions at this share of a key's limit: the hash spreads ids evenly only on average.
PARTITION_TARGET_SHARE = 0.8


def units(size_bytes: int | float, unit_bytes: int) -> int:
    """Billing units for one payload: started units, and at least one (an empty request still bills)."""
    return max(1, math.ceil(size_bytes / unit_bytes))


def api_units(body_bytes: int) -> int:
    return units(body_bytes, API_UNIT_BYTES)


def sqs_requests(payload_bytes: int) -> int:
    return units(payload_bytes, SQS_CHUNK_BYTES)


def kinesis_put_units(record_bytes: int) -> int:
    return units(record_bytes, KINESIS_PUT_UNIT_BYTES)


def kinesis_on_demand_kb(record_bytes: int) -> int:
    return units(record_bytes, KINESIS_ON_DEMAND_ROUND_BYTES)


def dynamodb_wru(item_bytes: int) -> int:
    return units(item_bytes, DYNAMODB_WRU_BYTES)


def _number_size(text: str) -> int:
    # DynamoDB: numbers take about one byte per two significant digits, plus one byte.
    digits = text.lstrip("-").replace(".", "").lstrip("0").rstrip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def dynamodb_value_size(value: Mapping[str, Any]) -> int:
    """Size of one attribute value in DynamoDB JSON (``{"S": "..."}``), by DynamoDB's sizing rules."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return _number_size(str(inner))
    if kind in ("B", "BS"):
        return len(inner) if kind == "B" else sum(len(b) for b in inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in inner)
    if kind == "NS":
        return sum(_number_size(str(n)) for n in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + dynamodb_value_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(dynamodb_value_size(v) + 1 for v in inner)
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def dynamodb_item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """Bytes DynamoDB bills for an item: every attribute name plus its value."""
    return sum(len(name.encode()) + dynamodb_value_size(value) for name, value in item.items())


@dataclass
class Usage:
    """What the pipeline consumes for ``records`` records: the inputs of the cost model."""

    records: int
    api_requests: float = 0.0
    api_units: float = 0.0
    lambda_invocations: dict[str, float] = field(default_factory=dict)
    lambda_gb_seconds: dict[str, float] = field(default_factory=dict)
    sqs_requests: float = 0.0  # billed requests (64 KB chunks), every SQS action
    kinesis_put_units: float = 0.0
    kinesis_kb_in: float = 0.0  # on-demand data-in, each record rounded up to 1 KB
    kinesis_kb_out: float = 0.0  # on-demand data read by the stream consumers
    dynamodb_wru: float = 0.0
    log_bytes: float = 0.0  # CloudWatch Logs ingestion: handler logs, EMF metrics, Lambda platform lines
    s3_puts: float = 0.0

    def per(self, records: int) -> Usage:
        """The same usage scaled to ``records`` records."""
        f = records / self.records
        scaled = {k: {n: v * f for n, v in x.items()} if isinstance(x, dict) else x * f
                  for k, x in asdict(self).items() if k != "records"}  # fmt: skip
        return Usage(records=records, **scaled)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Line:
    """One line of a bill: what, how much of it, and what it costs."""

    item: str
    quantity: float
    unit: str
    usd: float


def load_prices(path: Path = PRICES_PATH) -> dict[str, float]:
    """Price name -> USD, validated: every price has a number, a unit, a date and a source URL."""
    doc = orjson.loads(path.read_bytes())
    return {name: float(entry["usd"]) for name, entry in validate_prices(doc).items()}


def validate_prices(doc: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    prices = doc.get("prices")
    if not isinstance(prices, Mapping) or not prices:
        raise ValueError("prices.json: 'prices' must be a non-empty object")
    for name, entry in prices.items():
        for key in ("usd", "unit", "date", "source"):
            if key not in entry:
                raise ValueError(f"prices.json: {name} has no {key!r}")
        if not isinstance(entry["usd"], int | float) or entry["usd"] < 0:
            raise ValueError(f"prices.json: {name}.usd must be a non-negative number")
        if not str(entry["source"]).startswith("https://"):
            raise ValueError(f"prices.json: {name}.source must be an https URL")
    return prices


def usage_lines(usage: Usage, prices: Mapping[str, float], kinesis_mode: str = "provisioned") -> list[Line]:
    """The variable (per-event) part of the bill for ``usage``, line by line.

    Fixed charges (shard-hours, stream-hours) do not scale with events: see ``fixed_monthly_lines``.
    """
    p, u = prices, usage
    lines = [Line("API Gateway HTTP API requests", u.api_units, "512 KB units",
                  u.api_units * p["apigw_http_per_million_requests"] / 1e6)]  # fmt: skip
    for fn in sorted(u.lambda_invocations):
        n, gbs = u.lambda_invocations[fn], u.lambda_gb_seconds.get(fn, 0.0)
        lines.append(
            Line(f"Lambda {fn} requests", n, "invocations", n * p["lambda_per_million_requests"] / 1e6)
        )
        lines.append(Line(f"Lambda {fn} duration", gbs, "GB-s", gbs * p["lambda_arm64_per_gb_second"]))
    lines.append(Line("SQS requests", u.sqs_requests, "64 KB requests",
                      u.sqs_requests * p["sqs_standard_per_million_requests"] / 1e6))  # fmt: skip
    if kinesis_mode == "provisioned":
        lines.append(Line("Kinesis PUT payload units", u.kinesis_put_units, "25 KB units",
                          u.kinesis_put_units * p["kinesis_per_million_put_payload_units"] / 1e6))  # fmt: skip
    else:
        gb_in, gb_out = u.kinesis_kb_in / KiB**2, u.kinesis_kb_out / KiB**2
        lines.append(Line("Kinesis on-demand data in", gb_in, "GB", gb_in * p["kinesis_on_demand_per_gb_in"]))
        lines.append(
            Line("Kinesis on-demand data out", gb_out, "GB", gb_out * p["kinesis_on_demand_per_gb_out"])
        )
    gb_logs = u.log_bytes / KiB**3
    return [
        *lines,
        Line("DynamoDB writes", u.dynamodb_wru, "WRU", u.dynamodb_wru * p["dynamodb_on_demand_per_million_wru"] / 1e6),
        Line("CloudWatch Logs ingestion", gb_logs, "GB", gb_logs * p["cloudwatch_logs_per_gb_ingested"]),
        Line("S3 PUT (archive)", u.s3_puts, "requests", u.s3_puts * p["s3_put_per_thousand"] / 1e3),
    ]  # fmt: skip


def fixed_monthly_lines(prices: Mapping[str, float], kinesis_mode: str, shards: int) -> list[Line]:
    """Charges that run by the hour whatever the traffic."""
    if kinesis_mode == "provisioned":
        hours = shards * HOURS_PER_MONTH
        return [Line("Kinesis shard-hours", hours, "shard-hours", hours * prices["kinesis_shard_hour"])]
    return [Line("Kinesis on-demand stream-hours", HOURS_PER_MONTH, "stream-hours",
                 HOURS_PER_MONTH * prices["kinesis_on_demand_stream_hour"])]  # fmt: skip


def total(lines: Iterable[Line]) -> float:
    return sum(line.usd for line in lines)


def per_million(usage: Usage, prices: Mapping[str, float], kinesis_mode: str = "provisioned") -> list[Line]:
    """Variable cost per million events."""
    return usage_lines(usage.per(1_000_000), prices, kinesis_mode)


@dataclass(frozen=True)
class Profile:
    """Facts about the pipeline that turn a load into usage; ``make bench`` measures and saves them.

    The defaults are figures measured on the development machine (docs/performance.md); a
    ``loadtest/out/bench.json`` from a newer ``make bench`` run replaces them.
    """

    envelope_overhead_bytes: int = 330  # serialized envelope minus the producer's event
    item_overhead_bytes: int = 420  # stored DynamoDB item minus the producer's event, body stored natively
    # STORE_COMPACT (on by default): the body is stored gzipped when that takes fewer WRU. A 1 KB event
    # of the bench's workload gzips to a quarter; 0.35 leaves room for less repetitive producers.
    compact_storage: bool = True
    compressed_body_ratio: float = 0.35
    ingest_log_bytes_per_request: int = 700  # Logger line(s) plus EMF metrics, INFO level
    worker_log_bytes_per_batch: int = 700
    consumer_log_bytes_per_batch: int = 400
    platform_log_bytes_per_invocation: int = 260  # START, END and REPORT lines Lambda writes itself
    ingest_ms_base: float = 20.0  # per invocation: the concurrent SQS + Kinesis round trip
    ingest_ms_per_record: float = 0.05
    worker_ms_base: float = 20.0
    worker_ms_per_record: float = 0.3
    consumer_ms_base: float = 20.0
    consumer_ms_per_record: float = 0.05
    memory_mb: int = 512
    worker_batch_size: int = 100  # core/wiring.json
    worker_window_seconds: float = 1.0
    consumer_batch_size: int = 500
    consumer_window_seconds: float = 5.0
    stream_consumers: int = 2  # archiver and rollup
    sqs_batch_max_bytes: int = 256 * KiB

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Profile:
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


def stored_item_bytes(profile: Profile, event_bytes: int) -> int:
    """The DynamoDB item for one event: native, or gzipped when that saves write units (as the worker does)."""
    native = event_bytes + profile.item_overhead_bytes
    if not profile.compact_storage:
        return native
    compact = profile.item_overhead_bytes + int(event_bytes * profile.compressed_body_ratio)
    return compact if dynamodb_wru(compact) < dynamodb_wru(native) else native


def effective_batch(rate_per_second: float | None, batch_size: int, window_seconds: float) -> float:
    """Records per consumer invocation: full batches under load, what one window gathers when quiet."""
    if rate_per_second is None:
        return float(batch_size)
    return float(min(batch_size, max(1.0, rate_per_second * window_seconds)))


def estimate_usage(profile: Profile, event_bytes: int, batch: int, records: int = 1000,
                   rate_per_second: float | None = None) -> Usage:  # fmt: skip
    """Usage for ``records`` events of ``event_bytes`` each, posted ``batch`` per request.

    ``rate_per_second`` (events) sets how full the worker's and consumers' batches get; None means full.
    """
    pr = profile
    envelope = event_bytes + pr.envelope_overhead_bytes
    requests = records / batch
    body = batch * event_bytes + (batch + 1)  # a JSON array: brackets and commas
    # Ingest: SendMessageBatch of up to 10 entries within the batch byte cap, PutRecords of up to 500.
    per_call = max(1, min(10, pr.sqs_batch_max_bytes // envelope))
    full, rest = divmod(batch, per_call)
    sends_per_request = full * sqs_requests(per_call * envelope) + (
        sqs_requests(rest * envelope) if rest else 0
    )
    # Worker: the event source receives 10 at a time and deletes 10 at a time.
    tens = math.ceil(records / 10) if records else 0
    worker_calls = records / effective_batch(rate_per_second, pr.worker_batch_size, pr.worker_window_seconds)
    consumer_calls = pr.stream_consumers * records / effective_batch(
        rate_per_second, pr.consumer_batch_size, pr.consumer_window_seconds)  # fmt: skip
    gb = pr.memory_mb / 1024
    ingest_s = requests * (pr.ingest_ms_base + pr.ingest_ms_per_record * batch) / 1000
    worker_s = (worker_calls * pr.worker_ms_base + records * pr.worker_ms_per_record) / 1000
    consumer_s = (
        consumer_calls * pr.consumer_ms_base + pr.stream_consumers * records * pr.consumer_ms_per_record
    ) / 1000
    log_bytes = (requests * pr.ingest_log_bytes_per_request + worker_calls * pr.worker_log_bytes_per_batch
                 + consumer_calls * pr.consumer_log_bytes_per_batch
                 + (requests + worker_calls + consumer_calls) * pr.platform_log_bytes_per_invocation)  # fmt: skip
    return Usage(
        records=records, api_requests=requests, api_units=requests * api_units(body),
        lambda_invocations={"ingest": requests, "worker": worker_calls, "consumers": consumer_calls},
        lambda_gb_seconds={"ingest": ingest_s * gb, "worker": worker_s * gb, "consumers": consumer_s * gb},
        sqs_requests=requests * sends_per_request + tens * sqs_requests(10 * envelope) + tens,
        kinesis_put_units=records * kinesis_put_units(envelope),
        kinesis_kb_in=records * kinesis_on_demand_kb(envelope),
        kinesis_kb_out=pr.stream_consumers * records * envelope / KiB,
        dynamodb_wru=records * dynamodb_wru(stored_item_bytes(pr, event_bytes)), log_bytes=log_bytes,
        s3_puts=consumer_calls / pr.stream_consumers,  # the archiver writes one object per batch
    )  # fmt: skip


# ---------------------------------------------------------------- make cost


def load_profile(path: Path = BENCH_JSON) -> tuple[Profile, str]:
    if path.exists():
        measured = orjson.loads(path.read_bytes()).get("profile", {})
        return Profile.from_dict(measured), f"measured by make bench ({path.name})"
    return Profile(), "defaults in loadtest/cost.py (run make bench to measure)"


@dataclass(frozen=True)
class PartitionAdvice:
    """Whether one tenant's writes fit one partition key value, and the partitions to give it if not."""

    tenant_wru_per_s: float
    partitions: int  # recommended N (keys partitions set); 1: the tenant id alone is enough
    over_one_key: bool  # the tenant needs more than one partition key value
    beyond_max: bool  # even MAX_PARTITIONS keys would be over the target share

    def describe(self) -> str:
        if not self.over_one_key:
            return (
                f"1 ({self.tenant_wru_per_s:,.0f} WRU/s is within one key's {DDB_KEY_WRU_PER_S:,} WRU/s "
                f"at {PARTITION_TARGET_SHARE:.0%})"
            )
        text = (
            f"{self.partitions} -- the tenant writes {self.tenant_wru_per_s:,.0f} WRU/s, more than one key "
            f"takes: keys partitions set --tenant T {self.partitions}"
        )
        if self.beyond_max:
            text += f" (over {MAX_PARTITIONS} keys' worth even at the maximum: split the tenant)"
        return text


def partition_advice(tenant_wru_per_s: float) -> PartitionAdvice:
    """The partitions a tenant writing ``tenant_wru_per_s`` needs: each key kept at or below
    ``PARTITION_TARGET_SHARE`` of ``DDB_KEY_WRU_PER_S``, at most ``MAX_PARTITIONS``."""
    needed = max(1, math.ceil(tenant_wru_per_s / (DDB_KEY_WRU_PER_S * PARTITION_TARGET_SHARE)))
    return PartitionAdvice(tenant_wru_per_s, min(needed, MAX_PARTITIONS), needed > 1, needed > MAX_PARTITIONS)


def plan(rps: float, event_bytes: int, batch: int, profile: Profile, prices: dict[str, float],
         kinesis_mode: str = "provisioned", tenant_share: float = 1.0) -> dict[str, Any]:  # fmt: skip
    """Monthly bill and capacity for ``rps`` requests/s of ``batch`` events of ``event_bytes``.

    ``tenant_share``: the part of the load the largest tenant sends (1: all of it), for the partitions
    that tenant needs (``partition_advice``)."""
    events_per_s = rps * batch
    usage = estimate_usage(profile, event_bytes, batch, records=1000, rate_per_second=events_per_s)
    monthly_events = events_per_s * SECONDS_PER_MONTH
    envelope = event_bytes + profile.envelope_overhead_bytes
    shards = max(1, math.ceil(events_per_s / SHARD_RECORDS_PER_S),
                 math.ceil(events_per_s * envelope / SHARD_BYTES_PER_S))  # fmt: skip
    variable = usage_lines(usage.per(max(1, round(monthly_events))), prices, kinesis_mode)
    fixed = fixed_monthly_lines(prices, kinesis_mode, shards)
    per_s = usage.per(1000)
    scale = events_per_s / 1000

    def concurrency(fn: str) -> float:
        # Little's law: invocations/s x seconds per invocation.
        if not per_s.lambda_invocations.get(fn):
            return 0.0
        return per_s.lambda_gb_seconds.get(fn, 0.0) * scale / (profile.memory_mb / 1024)

    wru_per_s = per_s.dynamodb_wru * scale
    advice = partition_advice(wru_per_s * tenant_share)
    return {
        "events_per_second": events_per_s,
        "events_per_month": monthly_events,
        "lines": variable + fixed,
        "total": total(variable) + total(fixed),
        "per_million": total(variable) / monthly_events * 1e6 if monthly_events else 0.0,
        "capacity": {
            "kinesis": f"{shards} provisioned shard(s)" if kinesis_mode == "provisioned" else "on-demand stream",
            "ingest concurrency": concurrency("ingest"),
            "worker concurrency": concurrency("worker"),
            "worker records per invocation": effective_batch(events_per_s, profile.worker_batch_size,
                                                             profile.worker_window_seconds),
            "dynamodb WRU/s": wru_per_s,
            "dynamodb table quota used": wru_per_s / DDB_TABLE_WRU_PER_S,
            "largest tenant's partitions": advice.describe(),
        },
        "partitions": advice,
    }  # fmt: skip


def render(args: argparse.Namespace, result: dict[str, Any], source: str, profile: Profile) -> str:
    out = [
        f"Load: {args.rps:g} requests/s x {args.batch} event(s) of {args.event_bytes} bytes = "
        f"{result['events_per_second']:,.0f} events/s, {result['events_per_month']:,.0f} events/month (730 h)",
        f"Pipeline profile: {source}",
        "",
        f"{'line item':34} {'quantity':>18} {'unit':16} {'USD/month':>12}",
    ]
    out += [f"{ln.item:34} {ln.quantity:>18,.1f} {ln.unit:16} {ln.usd:>12,.2f}" for ln in result["lines"]]
    out.append(f"{'TOTAL':34} {'':>18} {'':16} {result['total']:>12,.2f}")
    out.append(f"variable cost per million events: ${result['per_million']:.3f}")
    out.append("\nCapacity plan")
    for name, value in result["capacity"].items():
        shown = f"{value:,.2f}" if isinstance(value, float) else str(value)
        if name == "dynamodb table quota used":
            shown = f"{value:.1%} of {DDB_TABLE_WRU_PER_S:,} WRU/s"
        out.append(f"  {name:32} {shown}")
    if result["partitions"].over_one_key:
        out.append(
            f"\nWARNING: the largest tenant ({args.tenant_share:.0%} of the load) needs more than one partition key "
            f"value (about {DDB_KEY_WRU_PER_S:,} WRU/s each): with one, DynamoDB throttles its writes and the "
            f"queue backs up. Give it {result['partitions'].partitions} partitions before it reaches this rate "
            "(docs/performance.md, one tenant's ceiling)."
        )
    out.append(
        "\nAssumptions: us-east-1 list prices from loadtest/prices.json, no free tier, first tiers; "
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
    parser.add_argument(
        "--tenant-share", type=float, default=1.0,
        help="the part of the load (0..1] the largest tenant sends (default 1: one tenant sends it all)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.rps <= 0 or args.batch < 1 or args.event_bytes < 1 or not 0 < args.tenant_share <= 1:
        parser.error("--rps must be > 0, --batch and --event-bytes >= 1, --tenant-share in (0, 1]")
    profile, source = load_profile()
    result = plan(
        args.rps, args.event_bytes, args.batch, profile, load_prices(), args.kinesis, args.tenant_share
    )
    print(render(args, result, source, profile))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


@dataclass(frozen=True)
class QuotaOverhead:
    """What per-tenant quotas add (ingest/quotas.py): DynamoDB calls per 1,000 records and USD per million."""

    records_per_request: int
    requests_per_second: float  # of one tenant, in one ingest container
    lease_calls_per_1000: float  # UpdateItem, 1 WRU each (the state item is far below 1 KB)
    override_reads_per_1000: float  # GetItem, eventually consistent: half a read unit each
    usd_per_million: float


def quota_overhead(
    records_per_request: int,
    requests_per_second: float,
    prices: Mapping[str, float],
    min_lease_requests: float = 20.0,
    lease_seconds: tuple[float, float] = (1.0, 5.0),
    policy_ttl_seconds: float = 60.0,
) -> QuotaOverhead:
    """The quota store's cost for one tenant's traffic through one container.

    A container leases about a second of its demand, at least ``min_lease_requests`` requests (a tenth
    of the default requests burst), and a lease lasts as long as that demand takes to use it, within
    ``lease_seconds``: one UpdateItem per lease while the tenant sends, never more than one per request.
    Overrides are re-read once per ``policy_ttl_seconds`` (or per request, when rarer).
    The records and bytes leases are renewed in the same calls (their minimum shares last as long).
    """
    records_per_second = records_per_request * requests_per_second
    shortest, longest = lease_seconds
    period = min(longest, max(shortest, min_lease_requests / requests_per_second))
    leases = min(requests_per_second, 1 / period) * 1000 / records_per_second
    reads = min(requests_per_second, 1 / policy_ttl_seconds) * 1000 / records_per_second
    usd = quota_calls_usd_per_million(leases, reads, prices)
    return QuotaOverhead(records_per_request, requests_per_second, leases, reads, usd)


def quota_calls_usd_per_million(
    leases_per_1000: float, reads_per_1000: float, prices: Mapping[str, float]
) -> float:
    """USD per million records of the quota store's calls: a lease (``UpdateItem`` of an item far below
    1 KB) is 1 WRU, a read of the overrides (eventually consistent ``GetItem``) half an RRU."""
    return (
        leases_per_1000 * 1000 * prices["dynamodb_on_demand_per_million_wru"]
        + reads_per_1000 * 1000 * 0.5 * prices["dynamodb_on_demand_per_million_rru"]
    ) / 1_000_000
