"""The cost model: billing units, usage per 1,000 records, and dollars per million events or per month.

Pure functions over plain numbers, shared by ``make bench`` (usage counted against the emulator) and
``make cost`` (usage estimated from a load and the pipeline's measured profile). Prices come from one
file, ``prices.json``; nothing here hard-codes a price.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

PRICES_PATH = Path(__file__).parent / "prices.json"
KiB = 1024
HOURS_PER_MONTH = 730  # AWS's own monthly convention in its pricing examples

# Billing unit sizes, each from the price's own page (see prices.json).
API_UNIT_BYTES = 512 * KiB  # HTTP API requests are metered in 512 KB increments
SQS_CHUNK_BYTES = 64 * KiB  # every 64 KB chunk of an SQS request's payload is one request
KINESIS_PUT_UNIT_BYTES = 25 * KiB  # PUT payload unit (provisioned mode)
KINESIS_ON_DEMAND_ROUND_BYTES = KiB  # on-demand data-in: each record rounded up to 1 KB
DYNAMODB_WRU_BYTES = KiB  # one write request unit per started 1 KB of item


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
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in inner)
    if kind == "NS":
        return sum(_number_size(str(n)) for n in inner)
    if kind == "BS":
        return sum(len(b) for b in inner)
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
        return Usage(
            records=records,
            api_requests=self.api_requests * f,
            api_units=self.api_units * f,
            lambda_invocations={k: v * f for k, v in self.lambda_invocations.items()},
            lambda_gb_seconds={k: v * f for k, v in self.lambda_gb_seconds.items()},
            sqs_requests=self.sqs_requests * f,
            kinesis_put_units=self.kinesis_put_units * f,
            kinesis_kb_in=self.kinesis_kb_in * f,
            kinesis_kb_out=self.kinesis_kb_out * f,
            dynamodb_wru=self.dynamodb_wru * f,
            log_bytes=self.log_bytes * f,
            s3_puts=self.s3_puts * f,
        )

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
    p = prices
    lines = [
        Line("API Gateway HTTP API requests", usage.api_units, "512 KB units",
             usage.api_units * p["apigw_http_per_million_requests"] / 1e6),
    ]  # fmt: skip
    for fn in sorted(usage.lambda_invocations):
        n = usage.lambda_invocations[fn]
        lines.append(
            Line(f"Lambda {fn} requests", n, "invocations", n * p["lambda_per_million_requests"] / 1e6)
        )
        gbs = usage.lambda_gb_seconds.get(fn, 0.0)
        lines.append(Line(f"Lambda {fn} duration", gbs, "GB-s", gbs * p["lambda_arm64_per_gb_second"]))
    lines.append(
        Line("SQS requests", usage.sqs_requests, "64 KB requests",
             usage.sqs_requests * p["sqs_standard_per_million_requests"] / 1e6)
    )  # fmt: skip
    if kinesis_mode == "provisioned":
        lines.append(
            Line("Kinesis PUT payload units", usage.kinesis_put_units, "25 KB units",
                 usage.kinesis_put_units * p["kinesis_per_million_put_payload_units"] / 1e6)
        )  # fmt: skip
    else:
        gb_in, gb_out = usage.kinesis_kb_in / KiB**2, usage.kinesis_kb_out / KiB**2
        lines.append(Line("Kinesis on-demand data in", gb_in, "GB", gb_in * p["kinesis_on_demand_per_gb_in"]))
        lines.append(
            Line("Kinesis on-demand data out", gb_out, "GB", gb_out * p["kinesis_on_demand_per_gb_out"])
        )
    lines.append(
        Line("DynamoDB writes", usage.dynamodb_wru, "WRU",
             usage.dynamodb_wru * p["dynamodb_on_demand_per_million_wru"] / 1e6)
    )  # fmt: skip
    gb_logs = usage.log_bytes / KiB**3
    lines.append(
        Line("CloudWatch Logs ingestion", gb_logs, "GB", gb_logs * p["cloudwatch_logs_per_gb_ingested"])
    )
    lines.append(
        Line("S3 PUT (archive)", usage.s3_puts, "requests", usage.s3_puts * p["s3_put_per_thousand"] / 1e3)
    )
    return lines


def fixed_monthly_lines(prices: Mapping[str, float], kinesis_mode: str, shards: int) -> list[Line]:
    """Charges that run by the hour whatever the traffic."""
    if kinesis_mode == "provisioned":
        hours = shards * HOURS_PER_MONTH
        return [Line("Kinesis shard-hours", hours, "shard-hours", hours * prices["kinesis_shard_hour"])]
    return [
        Line("Kinesis on-demand stream-hours", HOURS_PER_MONTH, "stream-hours",
             HOURS_PER_MONTH * prices["kinesis_on_demand_stream_hour"])
    ]  # fmt: skip


def total(lines: Iterable[Line]) -> float:
    return sum(line.usd for line in lines)


def per_million(usage: Usage, prices: Mapping[str, float], kinesis_mode: str = "provisioned") -> list[Line]:
    """Variable cost per million events."""
    return usage_lines(usage.per(1_000_000), prices, kinesis_mode)


@dataclass(frozen=True)
class Profile:
    """Facts about the pipeline that turn a load into usage; ``make bench`` measures and saves them.

    The defaults are the figures measured on the development machine (docs/performance.md); a
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
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in values.items() if k in known})


def stored_item_bytes(profile: Profile, event_bytes: int) -> int:
    """The DynamoDB item for one event: native, or gzipped when that saves write units (as the worker does)."""
    native = event_bytes + profile.item_overhead_bytes
    if not profile.compact_storage:
        return native
    compact = profile.item_overhead_bytes + int(event_bytes * profile.compressed_body_ratio)
    return compact if dynamodb_wru(compact) < dynamodb_wru(native) else native


def _calls(records: int, per_call: int) -> int:
    return math.ceil(records / per_call) if records else 0


def effective_batch(rate_per_second: float | None, batch_size: int, window_seconds: float) -> float:
    """Records per consumer invocation: full batches under load, what one window gathers when quiet."""
    if rate_per_second is None:
        return float(batch_size)
    return float(min(batch_size, max(1.0, rate_per_second * window_seconds)))


def estimate_usage(
    profile: Profile,
    event_bytes: int,
    batch: int,
    records: int = 1000,
    rate_per_second: float | None = None,
) -> Usage:
    """Usage for ``records`` events of ``event_bytes`` each, posted ``batch`` per request.

    ``rate_per_second`` (events) sets how full the worker's and consumers' batches get; None means full.
    """
    envelope = event_bytes + profile.envelope_overhead_bytes
    item = stored_item_bytes(profile, event_bytes)
    requests = records / batch
    body = batch * event_bytes + (batch + 1)  # a JSON array: brackets and commas
    # Ingest: SendMessageBatch of up to 10 entries within the batch byte cap, PutRecords of up to 500.
    per_call = max(1, min(10, profile.sqs_batch_max_bytes // envelope))
    full, rest = divmod(batch, per_call)
    sends_per_request = full * sqs_requests(per_call * envelope) + (
        sqs_requests(rest * envelope) if rest else 0
    )
    # Worker: the event source receives 10 at a time and deletes 10 at a time.
    receives = _calls(records, 10) * sqs_requests(10 * envelope)
    deletes = _calls(records, 10)
    worker_batch = effective_batch(rate_per_second, profile.worker_batch_size, profile.worker_window_seconds)
    consumer_batch = effective_batch(
        rate_per_second, profile.consumer_batch_size, profile.consumer_window_seconds
    )
    worker_invocations = records / worker_batch
    consumer_invocations = profile.stream_consumers * records / consumer_batch
    gb = profile.memory_mb / 1024
    ingest_s = requests * (profile.ingest_ms_base + profile.ingest_ms_per_record * batch) / 1000
    worker_s = (worker_invocations * profile.worker_ms_base + records * profile.worker_ms_per_record) / 1000
    consumer_s = (
        consumer_invocations * profile.consumer_ms_base
        + profile.stream_consumers * records * profile.consumer_ms_per_record
    ) / 1000
    invocations = requests + worker_invocations + consumer_invocations
    log_bytes = (
        requests * profile.ingest_log_bytes_per_request
        + worker_invocations * profile.worker_log_bytes_per_batch
        + consumer_invocations * profile.consumer_log_bytes_per_batch
        + invocations * profile.platform_log_bytes_per_invocation
    )
    return Usage(
        records=records,
        api_requests=requests,
        api_units=requests * api_units(body),
        lambda_invocations={
            "ingest": requests,
            "worker": worker_invocations,
            "consumers": consumer_invocations,
        },
        lambda_gb_seconds={"ingest": ingest_s * gb, "worker": worker_s * gb, "consumers": consumer_s * gb},
        sqs_requests=requests * sends_per_request + receives + deletes,
        kinesis_put_units=records * kinesis_put_units(envelope),
        kinesis_kb_in=records * kinesis_on_demand_kb(envelope),
        kinesis_kb_out=profile.stream_consumers * records * envelope / KiB,
        dynamodb_wru=records * dynamodb_wru(item),
        log_bytes=log_bytes,
        s3_puts=consumer_invocations / profile.stream_consumers,  # the archiver writes one object per batch
    )
