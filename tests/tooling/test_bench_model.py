"""The cost model: billing-unit rounding, DynamoDB item sizing, cost arithmetic, the price file."""

from __future__ import annotations

import pytest

from loadtest import cost as model
from loadtest.cost import Usage

KiB = 1024


@pytest.mark.parametrize(
    ("size", "unit", "expected"),
    [
        (0, 25 * KiB, 1),  # an empty record still bills one unit
        (1, 25 * KiB, 1),
        (25 * KiB, 25 * KiB, 1),
        (25 * KiB + 1, 25 * KiB, 2),
        (45 * KiB, 25 * KiB, 2),  # the 45 KB example of the Kinesis pricing page
        (1024 * KiB, 25 * KiB, 41),
    ],
)
def test_units_round_up_to_started_units(size: int, unit: int, expected: int) -> None:
    assert model.units(size, unit) == expected


def test_each_service_rounds_at_its_own_unit() -> None:
    assert (model.dynamodb_wru(1024), model.dynamodb_wru(1025)) == (1, 2)
    assert (
        model.sqs_requests(64 * KiB),
        model.sqs_requests(64 * KiB + 1),
        model.sqs_requests(256 * KiB),
    ) == (1, 2, 4)
    assert (model.kinesis_put_units(5 * KiB), model.kinesis_put_units(45 * KiB)) == (1, 2)
    assert (model.api_units(512 * KiB), model.api_units(512 * KiB + 1)) == (1, 2)
    assert (model.kinesis_on_demand_kb(4608), model.kinesis_on_demand_kb(1)) == (5, 1)  # 4.5 KB -> 5 KB


def test_dynamodb_item_size_counts_names_and_values() -> None:
    item = {
        "tenant_id": {"S": "acme"},  # 9 + 4
        "n": {"N": "12345"},  # 1 + (3 + 1): five digits take three bytes, plus one
        "ok": {"BOOL": True},  # 2 + 1
        "b": {"B": b"\x00\x01\x02"},  # 1 + 3
        "m": {"M": {"k": {"S": "vv"}}},  # 1 + 3 + (1 + 2 + 1)
        "l": {"L": [{"S": "x"}, {"NULL": True}]},  # 1 + 3 + (1 + 1) + (1 + 1)
    }
    assert model.dynamodb_item_size(item) == 13 + 5 + 3 + 4 + 8 + 8
    assert model.dynamodb_item_size({"é": {"S": "é"}}) == 4  # UTF-8 bytes, not characters


def test_dynamodb_item_size_refuses_unknown_types() -> None:
    with pytest.raises(ValueError, match="unknown DynamoDB type"):
        model.dynamodb_value_size({"Q": 1})


TINY_PRICES = {
    "apigw_http_per_million_requests": 1.0,
    "lambda_per_million_requests": 0.2,
    "lambda_arm64_per_gb_second": 0.00001,
    "sqs_standard_per_million_requests": 0.4,
    "kinesis_per_million_put_payload_units": 0.014,
    "kinesis_shard_hour": 0.015,
    "kinesis_on_demand_stream_hour": 0.04,
    "kinesis_on_demand_per_gb_in": 0.08,
    "kinesis_on_demand_per_gb_out": 0.04,
    "dynamodb_on_demand_per_million_wru": 0.625,
    "cloudwatch_logs_per_gb_ingested": 0.5,
    "s3_put_per_thousand": 0.005,
}


def test_cost_per_million_by_hand() -> None:
    # GIVEN usage for 1,000 events: 10 requests, 10 + 1 invocations, 120 SQS requests, 1,000 PUT units,
    # 2,000 WRU, 1 MiB of logs, 2 S3 PUTs, 5 GB-s of ingest
    usage = Usage(
        records=1000, api_requests=10, api_units=10,
        lambda_invocations={"ingest": 10, "worker": 1}, lambda_gb_seconds={"ingest": 5.0, "worker": 0.0},
        sqs_requests=120, kinesis_put_units=1000, dynamodb_wru=2000, log_bytes=KiB**2, s3_puts=2,
    )  # fmt: skip
    # WHEN priced per million events (x1000)
    lines = {line.item: line.usd for line in model.per_million(usage, TINY_PRICES)}
    # THEN each line is quantity x 1000 x price, computed by hand
    assert lines["API Gateway HTTP API requests"] == pytest.approx(10_000 * 1.0 / 1e6)  # 0.01
    assert lines["Lambda ingest requests"] == pytest.approx(10_000 * 0.2 / 1e6)  # 0.002
    assert lines["Lambda ingest duration"] == pytest.approx(5_000 * 0.00001)  # 0.05
    assert lines["Lambda worker requests"] == pytest.approx(1_000 * 0.2 / 1e6)
    assert lines["SQS requests"] == pytest.approx(120_000 * 0.4 / 1e6)  # 0.048
    assert lines["Kinesis PUT payload units"] == pytest.approx(0.014)
    assert lines["DynamoDB writes"] == pytest.approx(2_000_000 * 0.625 / 1e6)  # 1.25
    assert lines["CloudWatch Logs ingestion"] == pytest.approx(1000 / 1024 * 0.5)  # 1000 MiB
    assert lines["S3 PUT (archive)"] == pytest.approx(2000 * 0.005 / 1000)  # 0.01
    assert model.total(model.per_million(usage, TINY_PRICES)) == pytest.approx(sum(lines.values()))


def test_on_demand_kinesis_bills_gigabytes_and_stream_hours() -> None:
    usage = Usage(records=1000, kinesis_kb_in=1024**2, kinesis_kb_out=2 * 1024**2)  # 1 GiB in, 2 out
    lines = {ln.item: ln.usd for ln in model.usage_lines(usage, TINY_PRICES, "on-demand")}
    assert lines["Kinesis on-demand data in"] == pytest.approx(0.08)
    assert lines["Kinesis on-demand data out"] == pytest.approx(0.08)
    assert "Kinesis PUT payload units" not in lines
    (fixed,) = model.fixed_monthly_lines(TINY_PRICES, "on-demand", shards=3)
    assert fixed.usd == pytest.approx(730 * 0.04)
    (shards,) = model.fixed_monthly_lines(TINY_PRICES, "provisioned", shards=3)
    assert shards.usd == pytest.approx(3 * 730 * 0.015)


def test_estimate_counts_calls_at_the_service_limits() -> None:
    # GIVEN 1 KB events whose envelopes are 1,354 bytes, posted 100 per request
    profile = model.Profile(
        envelope_overhead_bytes=330, item_overhead_bytes=0, platform_log_bytes_per_invocation=0
    )
    usage = model.estimate_usage(profile, 1024, batch=100, records=1000)
    # THEN 10 requests; 10 SendMessageBatch of 10 (13.5 KB: one 64 KB chunk each) per request;
    # 100 receives and 100 deletes of 10; one PUT unit and one WRU per record
    assert usage.api_requests == 10
    assert usage.sqs_requests == 10 * 10 + 100 + 100
    assert usage.kinesis_put_units == 1000
    assert usage.dynamodb_wru == 1000
    assert usage.lambda_invocations["worker"] == 10  # full batches of 100


def test_estimate_at_a_low_rate_has_small_worker_batches() -> None:
    usage = model.estimate_usage(model.Profile(), 1024, batch=1, records=1000, rate_per_second=5)
    assert usage.lambda_invocations["worker"] == pytest.approx(1000 / 5)  # 5 records per 1 s window


def test_the_target_at_one_event_per_request_is_out_of_reach_by_construction() -> None:
    # API Gateway + one Lambda request + one SQS send per event, plus one WRU, at list prices:
    prices = model.load_prices()
    floor = (
        prices["apigw_http_per_million_requests"]
        + prices["lambda_per_million_requests"]
        + prices["sqs_standard_per_million_requests"]
        + prices["dynamodb_on_demand_per_million_wru"]
    )
    assert floor == pytest.approx(2.225)
    assert floor > 2.10


def test_price_file_every_price_has_unit_date_and_source() -> None:
    import orjson

    doc = orjson.loads(model.PRICES_PATH.read_bytes())
    assert doc["region"] == "us-east-1"
    prices = model.validate_prices(doc)
    assert set(TINY_PRICES) <= set(prices)  # every price the model reads is in the file
    for name, entry in prices.items():
        assert entry["date"][:4].isdigit(), name
        assert entry["source"].startswith("https://aws.amazon.com/"), name
        assert entry["checked"], name


@pytest.mark.parametrize(
    "broken",
    [
        {"prices": {}},
        {"prices": {"x": {"usd": 1, "unit": "u", "date": "2026-01-01"}}},  # no source
        {"prices": {"x": {"usd": 1, "unit": "u", "source": "https://a"}}},  # no date
        {"prices": {"x": {"usd": -1, "unit": "u", "date": "d", "source": "https://a"}}},
        {"prices": {"x": {"usd": 1, "unit": "u", "date": "d", "source": "http://a"}}},
    ],
)
def test_price_file_validation_names_the_problem(broken: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"prices\.json"):
        model.validate_prices(broken)


def test_compact_storage_is_modelled_as_the_worker_does_it() -> None:
    # A 1 KB event is 2 WRU natively (1,024 + 420 bytes) and 1 WRU gzipped; a 200-byte one stays native.
    from loadtest.cost import Profile, dynamodb_wru, stored_item_bytes

    assert dynamodb_wru(stored_item_bytes(Profile(compact_storage=False), 1024)) == 2
    assert dynamodb_wru(stored_item_bytes(Profile(), 1024)) == 1
    assert stored_item_bytes(Profile(), 200) == 200 + Profile().item_overhead_bytes


def test_quota_overhead_is_a_lease_per_second_or_per_small_lease_never_more_than_a_call_per_request() -> None:
    prices = model.load_prices()
    busy = model.quota_overhead(1, 50.0, prices)  # a lease a second, 50 records each
    assert busy.lease_calls_per_1000 == pytest.approx(20.0)
    slow = model.quota_overhead(1, 2.0, prices)  # 20 requests last 5 s at most: 10 requests per lease
    assert slow.lease_calls_per_1000 == pytest.approx(100.0)
    rare = model.quota_overhead(1, 0.1, prices)  # a request every 10 s: each one leases
    assert rare.lease_calls_per_1000 == pytest.approx(1000.0)
    batched = model.quota_overhead(100, 2.0, prices)
    assert batched.lease_calls_per_1000 == pytest.approx(1.0)
    assert busy.usd_per_million == pytest.approx(
        20 * prices["dynamodb_on_demand_per_million_wru"] / 1000
        + busy.override_reads_per_1000 * 0.5 * prices["dynamodb_on_demand_per_million_rru"] / 1000
    )


def test_a_tenant_over_one_keys_write_rate_is_flagged_with_the_partitions_it_needs() -> None:
    from core.partitions import MAX_PARTITIONS
    from loadtest.cost import DDB_KEY_WRU_PER_S, partition_advice

    assert partition_advice(500).partitions == 1 and not partition_advice(500).over_one_key
    assert partition_advice(0.8 * DDB_KEY_WRU_PER_S).partitions == 1
    advice = partition_advice(3000)
    assert (
        advice.over_one_key
        and advice.partitions == 4
        and "keys partitions set --tenant T 4" in advice.describe()
    )
    assert 3000 / advice.partitions <= 0.8 * DDB_KEY_WRU_PER_S
    huge = partition_advice(10**6)
    assert huge.partitions == MAX_PARTITIONS and huge.beyond_max


def test_make_cost_sizes_the_largest_tenant_from_the_stored_item() -> None:
    from loadtest.cost import Profile, dynamodb_wru, load_prices, plan, stored_item_bytes

    profile = Profile()
    # 30 requests/s of 100 events of 1 KB: every event is one stored item of this many units.
    wru = dynamodb_wru(stored_item_bytes(profile, 1024))
    whole = plan(30, 1024, 100, profile, load_prices())
    assert whole["partitions"].tenant_wru_per_s == pytest.approx(3000 * wru)
    assert whole["partitions"].over_one_key
    assert not plan(30, 1024, 100, profile, load_prices(), tenant_share=0.2)["partitions"].over_one_key
