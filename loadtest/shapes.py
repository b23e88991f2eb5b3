"""Load shapes: steady, step and burst, as schedules of phases.

A schedule is pure (``tick(run_time)`` is a function of the elapsed seconds), so its timetable is unit
tested without Locust. The locustfile wraps the selected schedule in one ``LoadTestShape`` subclass;
this module does not import Locust because importing Locust monkey-patches the whole process (gevent),
which must never happen inside the test suite or the load driver.

Each user sends at a fixed rate (``constant_throughput``), so user counts are request rates: a spike
from 2 to 30 users is a 15x jump in offered load, whatever the latency.
"""

from __future__ import annotations

from dataclasses import dataclass

Tick = tuple[int, float]


@dataclass(frozen=True)
class Phase:
    name: str  # "steady", "step-3", "baseline", "spike" ...
    seconds: float
    users: int
    spawn_rate: float


@dataclass(frozen=True)
class Schedule:
    """Phases run back to back; after the last one the test stops (``tick`` returns None)."""

    name: str
    phases: tuple[Phase, ...]

    @property
    def duration(self) -> float:
        return sum(p.seconds for p in self.phases)

    def phase_at(self, run_time: float) -> tuple[int, Phase] | None:
        """The index and phase running at ``run_time`` seconds, or None once the schedule is over."""
        end = 0.0
        for index, phase in enumerate(self.phases):
            end += phase.seconds
            if run_time < end:
                return index, phase
        return None

    def tick(self, run_time: float) -> Tick | None:
        found = self.phase_at(run_time)
        if found is None:
            return None
        _, phase = found
        return phase.users, phase.spawn_rate

    def spike_windows(self) -> list[tuple[float, float]]:
        """(start, end) seconds of every spike phase, for the drain-time measure."""
        windows, t = [], 0.0
        for phase in self.phases:
            if phase.name == "spike":
                windows.append((t, t + phase.seconds))
            t += phase.seconds
        return windows


def steady(users: int, spawn_rate: float, seconds: float) -> Schedule:
    """The same load for ``seconds``: a baseline, or a soak when long."""
    return Schedule("steady", (Phase("steady", seconds, users, spawn_rate),))


def step(peak_users: int, seconds: float, steps: int = 5) -> Schedule:
    """``steps`` equal increments up to ``peak_users`` over ``seconds``: where does latency bend?"""
    steps = max(1, min(steps, peak_users))
    per_step = seconds / steps
    return Schedule(
        "step",
        tuple(
            Phase(f"step-{k}", per_step, max(1, round(peak_users * k / steps)), float(peak_users))
            for k in range(1, steps + 1)
        ),
    )


def burst(
    spike_users: int,
    spike_factor: float = 15.0,
    baseline_seconds: float = 20.0,
    spike_seconds: float = 10.0,
    cycles: int = 2,
) -> Schedule:
    """A quiet baseline, a sudden spike of ``spike_factor`` x the baseline, back to baseline; ``cycles`` times.

    The spike starts all its users within one second (spawn rate = spike users): that is what a
    retry storm or a marketing e-mail going out looks like. The schedule ends on a baseline phase, so
    the drain after the last spike is observed while normal traffic continues.
    """
    baseline_users = max(1, round(spike_users / spike_factor))
    base = Phase("baseline", baseline_seconds, baseline_users, float(spike_users))
    spike = Phase("spike", spike_seconds, spike_users, float(spike_users))
    phases: list[Phase] = []
    for _ in range(cycles):
        phases += [base, spike]
    phases.append(base)
    return Schedule("burst", tuple(phases))


def noisy_neighbour(quiet_senders: int, flood_clients: int, baseline_seconds: float, flood_seconds: float,
                    warm_up_seconds: float = 0.0) -> Schedule:  # fmt: skip
    """The tenants scenario (``loadtest/tenants.py``): the quiet tenants alone, then with a flooder beside them.

    Users here are concurrent senders: one per quiet tenant throughout, plus the flooder's clients in
    the flood. The quiet load is the same in both phases, so the first is the second's baseline. A
    warm-up phase of the quiet load comes first when asked: its requests are not measured.
    """
    phases = [
        Phase("baseline", baseline_seconds, quiet_senders, float(quiet_senders)),
        Phase("flood", flood_seconds, quiet_senders + flood_clients, float(flood_clients)),
    ]
    if warm_up_seconds:
        phases.insert(0, Phase("warm-up", warm_up_seconds, quiet_senders, float(quiet_senders)))
    return Schedule("noisy-neighbour", tuple(phases))


SHAPES = ("steady", "step", "burst")


def build(
    name: str,
    users: int,
    spawn_rate: float,
    run_time: float,
    *,
    spike_factor: float = 15.0,
    baseline_seconds: float = 20.0,
    spike_seconds: float = 10.0,
    cycles: int = 2,
    steps: int = 5,
) -> Schedule:
    """The schedule named on the command line (``--shape``); ``users`` is the peak user count."""
    if name == "steady":
        return steady(users, spawn_rate, run_time)
    if name == "step":
        return step(users, run_time, steps)
    if name == "burst":
        return burst(users, spike_factor, baseline_seconds, spike_seconds, cycles)
    raise ValueError(f"unknown shape {name!r}; choose one of {', '.join(SHAPES)}")
