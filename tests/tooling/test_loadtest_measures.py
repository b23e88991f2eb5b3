"""Load-run measures: percentiles, lag, drain time, lost records and thresholds."""

from __future__ import annotations

import pytest

from loadtest import measures as m


def test_percentile_interpolates_like_numpy() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert m.percentile(values, 50) == pytest.approx(2.5)
    assert m.percentile(values, 0) == 1.0
    assert m.percentile(values, 100) == 4.0
    assert m.percentile(list(range(101)), 95) == pytest.approx(95)
    assert m.percentile([3.0, 1.0, 2.0], 50) == 2.0  # order of the input does not matter
    assert m.percentile([], 50) is None
    with pytest.raises(ValueError, match=r"0\.\.100"):
        m.percentile(values, 101)


@pytest.mark.parametrize(
    ("received", "stored", "lag"),
    [
        ("2026-11-22T10:15:30.000000Z", "2026-11-22T10:15:31.250000Z", 1.25),
        ("2026-11-22T10:15:30.500000Z", "2026-11-22T11:15:30.500000+01:00", 0.0),  # offsets count
        ("2026-11-22T10:15:30.000000Z", 1795342532.0, 2.0),  # epoch seconds
        ("2026-11-22T10:15:30.000000Z", 1795342530500, 0.5),  # epoch milliseconds
        ("2026-11-22T10:15:30.000000Z", "1795342531", 1.0),  # a number as text
    ],
)
def test_lag_from_rfc3339_or_epoch(received: str, stored: str | float, lag: float) -> None:
    assert m.lag_seconds(received, stored) == pytest.approx(lag, abs=1e-6)


def test_lag_summary() -> None:
    s = m.LagSummary.of([float(i) for i in range(1, 101)])
    assert (s.samples, s.p50, s.max) == (100, pytest.approx(50.5), 100.0)
    assert s.p99 == pytest.approx(99.01)
    assert m.LagSummary.of([]) == m.LagSummary(0, None, None, None, None)


SERIES = [
    (0.0, 3),
    (1.0, 5),
    (2.0, 4),
    (3.0, 400),
    (4.0, 900),
    (5.0, 700),
    (6.0, 300),
    (7.0, 6),
    (8.0, 4),
    (9.0, 0),
]


def test_drain_time_is_measured_to_the_first_sample_at_or_below_the_level() -> None:
    # GIVEN a spike ending at t=4 and a baseline that keeps up to 5 messages queued
    level = m.level_before(SERIES, 0.0, 3.0)
    assert level == 5
    # THEN drained (back to the baseline's level) at t=8, empty at t=9
    assert m.drain_time(SERIES, after=4.0, level=level) == pytest.approx(4.0)
    assert m.drain_time(SERIES, after=4.0) == pytest.approx(5.0)
    assert m.peak(SERIES) == 900


def test_drain_time_is_none_when_the_queue_never_drains() -> None:
    assert m.drain_time([(0.0, 10), (1.0, 20)], after=0.0) is None
    assert m.level_before([], 0, 10) == 0


def test_losses_count_accepted_but_not_stored_per_tenant() -> None:
    # GIVEN receipts for three tenants and what the table holds
    accepted = {"a": 100, "b": 50, "c": 7}
    stored = {"a": 100, "b": 47, "c": 9, "z": 1}
    report = m.losses(accepted, stored)
    # THEN only b lost records; c and z have extra (unacknowledged) ones, which is not a loss
    assert report.lost == 3 and report.lost_by_tenant == {"b": 3}
    assert report.extra == 3
    assert (report.accepted, report.stored) == (157, 157)


def test_nothing_lost_when_all_is_stored() -> None:
    assert m.losses({"a": 5}, {"a": 5}).lost == 0
    assert m.losses({"a": 5}, {}).lost_by_tenant == {"a": 5}


def test_thresholds() -> None:
    assert m.threshold_failures(1000, 0, 250.0, 0.0, 1000) == []
    assert m.threshold_failures(1000, 10, 250.0, 0.01, 1000) == []  # 1% is allowed at 1%
    [error] = m.threshold_failures(1000, 11, 250.0, 0.01, 1000)
    assert "error rate 1.10%" in error
    [latency] = m.threshold_failures(10, 0, 1500.0, 0.0, 1000)
    assert "p95 latency 1500 ms > 1000 ms" in latency
    assert m.threshold_failures(0, 0, None, 0.0, 1000) == ["no requests were sent"]


def test_table_aligns_columns() -> None:
    text = m.table([("lag p95 (s)", 1.234), ("records", 12345), ("lost", None)], ("measure", "value"))
    lines = text.splitlines()
    assert lines[0].startswith("measure") and set(lines[1]) <= {"-", " "}
    assert lines[2].endswith("1.23") and lines[3].endswith("12,345") and lines[4].endswith("-")
    assert len({len(line) for line in lines}) == 1


def test_stalled_in_flight_finds_messages_held_without_progress() -> None:
    # GIVEN 90 messages in flight, nothing visible, unchanged for 12 s, then redelivered
    samples = [(0.0, 50, 100), (1.0, 0, 90), *[(1.0 + i, 0, 90) for i in range(1, 13)], (14.0, 90, 0)]
    assert m.stalled_in_flight(samples) == 90
    # A busy worker (in flight changing) or a short pause is not a stall
    busy = [(float(i), 0, 90 + i % 2) for i in range(30)]
    assert m.stalled_in_flight(busy) == 0
    assert m.stalled_in_flight([(0.0, 0, 5), (5.0, 0, 5), (6.0, 0, 0)]) == 0
