"""The noisy-neighbour scenario (``make loadtest-tenants``): its schedule, its figures and verdicts on
hand-made requests, and a few seconds of it against a real local stack, so it cannot rot. The short run
asserts what holds on any machine (who is refused, what is lost), never a timing ratio."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from loadtest import shapes, tenants
from loadtest.tenants import FLOODER, QUIET, Outcome, ScenarioOptions


def test_the_quiet_tenants_send_in_both_phases_and_the_flooder_at_its_factor_in_the_flood_only() -> None:
    o = ScenarioOptions(quota_records_per_second=100, flood_factor=20, flood_batch=250, flood_clients=4)
    quiet = [s for s in o.senders("run") if s.role == QUIET]
    (flooder,) = [s for s in o.senders("run") if s.role == FLOODER]
    assert [s.records_per_second for s in quiet] == [20, 30, 40]
    assert all(s.phases == ("warm-up", "baseline", "flood") for s in quiet)
    assert flooder.phases == ("flood",) and flooder.clients == 4
    assert flooder.records_per_second == pytest.approx(2000)
    schedule = o.schedule()
    assert [p.name for p in schedule.phases] == ["warm-up", "baseline", "flood"]
    assert schedule.duration == o.warm_up_seconds + o.baseline_seconds + o.flood_seconds


def test_the_noisy_neighbour_schedule_adds_the_flood_clients_after_the_baseline() -> None:
    s = shapes.noisy_neighbour(3, 4, 10, 20)
    assert s.tick(0) == (3, 3.0) and s.tick(15) == (7, 4.0) and s.tick(30) is None
    warm = shapes.noisy_neighbour(3, 4, 10, 20, warm_up_seconds=5)
    assert [p.name for p in warm.phases] == ["warm-up", "baseline", "flood"] and warm.duration == 35


def test_the_warm_up_is_not_measured() -> None:
    outcomes = [_outcome("q", "warm-up", 900), _outcome("q", "baseline", 10), _outcome("q", "flood", 12)]
    senders = [tenants.Sender("q", QUIET, 5, 1.0, 1, ("warm-up", "baseline", "flood"))]
    rows = tenants.figures(outcomes, {}, senders, shapes.noisy_neighbour(1, 1, 10, 10, warm_up_seconds=5))
    assert [(r.phase, r.requests, r.accept_p95_ms) for r in rows] == [
        ("baseline", 1, 10.0),
        ("flood", 1, 12.0),
    ]


def _outcome(tenant: str, phase: str, ms: float, status: int = 202, sample: str | None = None) -> Outcome:
    return Outcome(tenant, phase, 0.0, ms / 1000, status, 5, 5 if status == 202 else 0, sample)


def _requests(quiet_flood_ms: float, flood_status: int) -> tuple[list[Outcome], dict[tuple[str, str], float]]:
    outcomes, lags = [], {}
    for i in range(20):
        outcomes.append(_outcome("q", "baseline", 10, sample=f"b{i}"))
        outcomes.append(_outcome("q", "flood", quiet_flood_ms, sample=f"f{i}"))
        outcomes.append(_outcome("f", "flood", 1, status=flood_status))
        lags[("q", f"b{i}")], lags[("q", f"f{i}")] = 1.0, 1.2
    return outcomes, lags


SENDERS = [
    tenants.Sender("q", QUIET, 5, 1.0, 1, ("baseline", "flood")),
    tenants.Sender("f", FLOODER, 250, 1.0, 1, ("flood",)),
]


@pytest.mark.parametrize(("quiet_flood_ms", "flood_status", "missed"), [
    (14, 429, []),
    (16, 429, ["p95 accept latency"]),
    (14, 503, ["flooder"]),
])  # fmt: skip
def test_verdicts_hold_the_quiet_tenants_to_1_5x_their_own_baseline_and_the_flooder_to_429(
    quiet_flood_ms: float, flood_status: int, missed: list[str]
) -> None:
    outcomes, lags = _requests(quiet_flood_ms, flood_status)
    rows = tenants.figures(outcomes, lags, SENDERS, shapes.noisy_neighbour(1, 1, 10, 10))
    quiet_flood = next(r for r in rows if r.tenant == "q" and r.phase == "flood")
    assert (quiet_flood.requests, quiet_flood.refused, quiet_flood.lag_p95_s) == (20, 0, 1.2)
    failed = [v.text for v in tenants.verdicts(rows, lost=0, dlq=0, quota=100) if not v.met]
    assert len(failed) == len(missed) and all(m in t for m, t in zip(missed, failed, strict=True)), failed


def test_a_lost_record_or_a_dead_letter_fails_the_run() -> None:
    outcomes, lags = _requests(10, 429)
    rows = tenants.figures(outcomes, lags, SENDERS, shapes.noisy_neighbour(1, 1, 10, 10))
    assert [v.met for v in tenants.verdicts(rows, lost=1, dlq=0, quota=100)][-2:] == [False, True]
    assert [v.met for v in tenants.verdicts(rows, lost=0, dlq=2, quota=100)][-2:] == [True, False]


@pytest.mark.integration
@pytest.mark.slow
def test_a_short_scenario_refuses_only_the_flooder_and_loses_nothing(tmp_path: Path) -> None:
    result = tenants.execute(replace(ScenarioOptions.short(), out=tmp_path))
    rows = result.rows
    quiet = [r for r in rows if r.role == QUIET]
    (flood,) = [r for r in rows if r.role == FLOODER]
    assert quiet and all(r.requests > 0 and r.accepted == r.requests for r in quiet), quiet
    assert sum(r.refused + r.server_errors + r.other_failures for r in quiet) == 0, quiet
    assert flood.refused > 0 and flood.server_errors == 0 and flood.other_failures == 0, flood
    assert result.summary["records_accepted"] == result.summary["records_stored"] > 0
    assert result.summary["lost_by_tenant"] == {} and result.summary["dlq_depth"] == 0
    assert (tmp_path / "tenants.json").exists() and (tmp_path / "requests.csv").exists()


def test_a_deployment_run_takes_its_tenants_in_the_order_of_the_key_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text('{"q0": "k0", "q1": "k1", "q2": "k2", "flood": "k3", "warm": "k4"}')
    o = replace(ScenarioOptions(), host="https://api.example/", api_keys_file=keys,
                queue_url="https://sqs.example/q", table="events", region="eu-west-1")  # fmt: skip
    target = tenants._deployment(o, "run")
    assert target.api_url == "https://api.example" and target.cpu is None
    assert target.tenants == ["q0", "q1", "q2", "flood"] and target.warm_up_key == "k4"
    assert [(s.tenant, s.role) for s in o.senders("run", target.tenants)][-1] == ("flood", FLOODER)
    keys.write_text('{"q0": "k0", "q1": "k1"}')
    with pytest.raises(SystemExit, match="4 tenants needed"):
        tenants._deployment(o, "run")
    with pytest.raises(SystemExit, match="--queue-url"):
        tenants._deployment(replace(o, queue_url=None), "run")
