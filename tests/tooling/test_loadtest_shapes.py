"""Load shapes: the user counts each schedule asks for, second by second."""

from __future__ import annotations

import pytest

from loadtest import shapes


def timeline(schedule: shapes.Schedule, step: float = 1.0) -> list[tuple[int, float] | None]:
    n = int(schedule.duration / step) + 2
    return [schedule.tick(i * step) for i in range(n)]


def test_steady_holds_the_users_then_stops() -> None:
    s = shapes.steady(5, 5.0, 10)
    ticks = timeline(s)
    assert ticks[:10] == [(5, 5.0)] * 10
    assert ticks[10:] == [None, None]


def test_step_climbs_in_equal_steps_to_the_peak() -> None:
    # GIVEN 5 steps up to 20 users over 50 s
    s = shapes.step(20, 50, steps=5)
    # THEN each 10 s window adds 4 users, the last one runs the peak, and the test then stops
    users = [t[0] if t else None for t in timeline(s, 10.0)]
    assert users == [4, 8, 12, 16, 20, None, None]
    assert s.duration == pytest.approx(50)


def test_step_never_has_more_steps_than_users() -> None:
    s = shapes.step(3, 30, steps=10)
    assert [p.users for p in s.phases] == [1, 2, 3]


def test_burst_alternates_baseline_and_a_sudden_spike_then_ends_on_baseline() -> None:
    # GIVEN a burst of 30 users, 15x the baseline, 20 s quiet / 10 s spike, 2 cycles
    s = shapes.burst(30, spike_factor=15, baseline_seconds=20, spike_seconds=10, cycles=2)
    ticks = timeline(s)
    # THEN: 2 users, then 30 users started within a second, back to 2, again, and a final baseline
    assert ticks[0] == (2, 30.0) and ticks[19] == (2, 30.0)
    assert ticks[20] == (30, 30.0) and ticks[29] == (30, 30.0)
    assert ticks[30] == (2, 30.0)
    assert ticks[50] == (30, 30.0)
    assert ticks[60] == (2, 30.0) and ticks[79] == (2, 30.0)
    assert ticks[80] is None
    assert [p.name for p in s.phases] == ["baseline", "spike", "baseline", "spike", "baseline"]
    assert s.spike_windows() == [(20.0, 30.0), (50.0, 60.0)]


@pytest.mark.parametrize(("spike", "factor", "baseline"), [(30, 15, 2), (20, 10, 2), (12, 20, 1), (1, 15, 1)])
def test_burst_baseline_is_the_spike_divided_by_the_factor(spike: int, factor: float, baseline: int) -> None:
    s = shapes.burst(spike, spike_factor=factor)
    assert {p.users for p in s.phases if p.name == "baseline"} == {baseline}


def test_phase_at_names_the_running_phase() -> None:
    s = shapes.burst(10, 10, baseline_seconds=5, spike_seconds=5, cycles=1)
    assert s.phase_at(0) == (0, s.phases[0])
    assert s.phase_at(7.5) == (1, s.phases[1])
    assert s.phase_at(14.99) == (2, s.phases[2])
    assert s.phase_at(15) is None


def test_build_selects_by_name_and_rejects_unknown_shapes() -> None:
    assert shapes.build("steady", 4, 2, 30).phases == (shapes.Phase("steady", 30, 4, 2),)
    assert shapes.build("step", 10, 10, 50).name == "step"
    assert shapes.build("burst", 30, 30, 0, cycles=3).spike_windows()[-1] == (80.0, 90.0)
    with pytest.raises(ValueError, match="unknown shape"):
        shapes.build("sine", 1, 1, 1)
