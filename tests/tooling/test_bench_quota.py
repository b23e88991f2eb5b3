"""The quota row of ``make bench``: the deployed quotas it runs with, what it counts, how it is priced, and
its figures in the printed Targets block and ``bench.json``'s ``targets`` (a recorded result; no stack)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest

from loadtest import cost
from loadtest.bench import __main__ as bench
from loadtest.bench import quota

RUNS = [
    {"batch": 1, "requests": 240, "records": 240, "statuses": {"202": 240}, "seconds": 12.0,
     "requests_per_second": 20.0, "ingest_containers": 4, "containers_before": 1,
     "calls": {"UpdateItem": 25, "GetItem": 4, "conflicts": 9}, "calls_per_1000": {"UpdateItem": 104.2, "GetItem": 16.7},
     "usd_per_million": 0.0685, "model_calls_per_1000": 53.3, "model_usd_per_million": 0.0315},
    {"batch": 100, "requests": 48, "records": 4800, "statuses": {"202": 48}, "seconds": 12.0,
     "requests_per_second": 4.0, "ingest_containers": 4, "containers_before": 4,
     "calls": {"UpdateItem": 24}, "calls_per_1000": {"UpdateItem": 5.0},
     "usd_per_million": 0.0029, "model_calls_per_1000": 2.17, "model_usd_per_million": 0.0013},
]  # fmt: skip
TOTALS = {"sluice, 1/request": 3.244, "sluice, 100/request": 0.8656}


def test_it_runs_with_the_quotas_terraform_deploys() -> None:
    q = quota.deployed_quota()
    assert q == {
        "TENANT_RECORDS_PER_SECOND": "1000", "TENANT_RECORDS_BURST": "5000",
        "TENANT_BYTES_PER_SECOND": "10485760", "TENANT_BYTES_BURST": "20971520",
        "TENANT_REQUESTS_PER_SECOND": "100", "TENANT_REQUESTS_BURST": "200",
    }  # fmt: skip


def test_only_calls_on_the_quota_items_of_the_keys_table_are_counted() -> None:
    counter = quota.QuotaCallCounter("keys")

    def call(op: str, table: str, key: str) -> None:
        counter._count(SimpleNamespace(name=op), {"TableName": table, "Key": {"key_hash": {"S": key}}})

    call("UpdateItem", "keys", "quota-state#acme")
    call("GetItem", "keys", "quota#acme")
    call("GetItem", "keys", "3f2a...")  # an API key lookup
    call("UpdateItem", "events", "quota-state#acme")
    counter._count(SimpleNamespace(name="BatchWriteItem"), {"RequestItems": {}})
    assert counter.take() == {"UpdateItem": 1, "GetItem": 1}
    assert counter.take() == {}


def test_a_lease_that_lost_the_race_is_counted_as_a_conflict_too() -> None:
    counter = quota.QuotaCallCounter("keys")
    lost = {"Error": {"Code": "ConditionalCheckFailedException"}}
    for key, answer in (("quota-state#acme", lost), ("quota-state#acme", {}), ("3f2a...", lost)):
        context: dict[str, object] = {}
        params = {"TableName": "keys", "Key": {"key_hash": {"S": key}}}
        counter._count(SimpleNamespace(name="UpdateItem"), params, context=context)
        counter._answered(answer, context=context)
    assert counter.take() == {"UpdateItem": 2, "conflicts": 1}


def test_a_lease_is_priced_as_one_write_unit_and_an_overrides_read_as_half_a_read_unit() -> None:
    prices = cost.load_prices()
    usd = quota.usd_per_million({"UpdateItem": 2.0, "GetItem": 4.0}, prices)
    expected = (2 * prices["dynamodb_on_demand_per_million_wru"]
                + 2 * prices["dynamodb_on_demand_per_million_rru"]) / 1000  # fmt: skip
    assert usd == pytest.approx(expected)


@pytest.mark.parametrize(("usd_1", "met_1"), [(0.0685, True), (0.2, False)])
def test_the_quota_rows_are_targets_of_5_and_2_percent_added(usd_1: float, met_1: bool) -> None:
    runs = [{**RUNS[0], "usd_per_million": usd_1}, RUNS[1]]
    q = {"runs": runs, "load_average_before": [3.1, 2.0, 1.0]}
    q["added_share"] = quota.added_share(q, TOTALS)
    result = {"cpu": [], "cold_start": {"rows": []}, "quota": q, "machine": "x", "date": "d"}
    targets = bench._targets(result)
    one, hundred = (targets[n] for n in targets if n.startswith("quota enforcement"))
    assert (one["target"], hundred["target"]) == (0.05, 0.02)
    assert one["value"] == pytest.approx(usd_1 / 3.244) and one["met"] is met_1
    assert hundred["met"] is True
    result["targets"] = targets
    printed = bench.report(result)
    assert "quota enforcement, 1 event/request" in printed.split("Targets", 1)[1]
    assert "11. Quota enforcement" in printed and "20 req/s over 4 containers" in printed
    assert "25 (9 lost a race) + 4" in printed


def test_skip_e2e_leaves_the_quota_runs_out_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the quota runs ran")

    monkeypatch.setattr(quota, "run_child", refuse)
    monkeypatch.setattr(bench.cpu, "run", lambda **kwargs: [])
    monkeypatch.setattr(bench.protocols, "run", lambda **kwargs: [])
    monkeypatch.setattr(bench.redaction, "run", lambda **kwargs: {})
    monkeypatch.setattr(bench.coldstart, "run", lambda **kwargs: {"rows": []})
    assert bench.main(["--skip-e2e", "--out", str(tmp_path / "bench.json")]) == 0
    assert "quota" not in orjson.loads((tmp_path / "bench.json").read_bytes())
