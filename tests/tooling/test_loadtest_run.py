"""The orchestrator's pure parts: the Locust command, reading receipts, spike timing, options."""

from __future__ import annotations

from pathlib import Path

import orjson

from loadtest import run


def test_locust_command_for_a_burst_leaves_the_duration_to_the_schedule(tmp_path: Path) -> None:
    o = run.RunOptions(shape="burst", users=20, cycles=3)
    cmd = run.locust_command(o, "http://127.0.0.1:1234", tmp_path, "abc")
    assert cmd[1:3] == ["-m", "locust"] and "--headless" in cmd
    assert cmd[cmd.index("--host") + 1] == "http://127.0.0.1:1234"
    assert cmd[cmd.index("--shape") + 1] == "burst" and cmd[cmd.index("--cycles") + 1] == "3"
    assert cmd[cmd.index("--run-id") + 1] == "abc" and cmd[cmd.index("--out-dir") + 1] == str(tmp_path)
    assert "-t" not in cmd  # a -t shorter than the schedule would cut the last phase off


def test_smoke_is_short_strict_and_samples_every_request(tmp_path: Path) -> None:
    o = run.options_from_args(run.build_parser().parse_args(["--smoke"]))
    cmd = run.locust_command(o, "http://h", tmp_path, "abc")
    assert o.schedule().duration <= 20 and o.users <= 3
    assert cmd[cmd.index("-t") + 1] == "10s"
    assert cmd[cmd.index("--max-error-rate") + 1] == "0.0"
    assert cmd[cmd.index("--sample-every") + 1] == "1"


def test_command_line_overrides_and_passes_extra_locust_arguments() -> None:
    args = run.build_parser().parse_args(
        ["--shape", "step", "-u", "40", "--simulated-cost-ms-per-kchar", "5", "--", "--loglevel", "DEBUG"]
    )
    o = run.options_from_args(args)
    assert (o.shape, o.users, o.host) == ("step", 40, None)
    assert o.stack_env == {"SIMULATED_COST_MS_PER_KCHAR": "5.0"}
    assert o.locust_args == ["--loglevel", "DEBUG"]


def test_receipts_of_every_locust_process_are_summed(tmp_path: Path) -> None:
    # GIVEN two Locust processes' receipts and samples
    (tmp_path / "accepted-1.json").write_bytes(orjson.dumps({"requests": 3, "tenants": {"a": 10, "b": 2}}))
    (tmp_path / "accepted-2.json").write_bytes(orjson.dumps({"requests": 4, "tenants": {"a": 5}}))
    (tmp_path / "samples-1.csv").write_text("tenant_id,event_id,sent_at\na,e1,1.0\n")
    (tmp_path / "samples-2.csv").write_text("tenant_id,event_id,sent_at\nb,e2,2.0\n")
    # WHEN they are read
    accepted, requests, samples = run.read_receipts(tmp_path)
    # THEN per-tenant totals add up and every sample is kept
    assert accepted == {"a": 15, "b": 2} and requests == 7
    assert samples == [("a", "e1"), ("b", "e2")]


def test_last_spike_end_is_the_start_of_the_phase_after_it() -> None:
    phases = [
        (100.0, "baseline"),
        (120.0, "spike"),
        (130.0, "baseline"),
        (150.0, "spike"),
        (160.0, "baseline"),
    ]
    assert run.last_spike_end(phases, load_ended=180.0) == 160.0
    assert run.last_spike_end([(100.0, "baseline"), (120.0, "spike")], load_ended=131.0) == 131.0
    assert run.last_spike_end([(100.0, "steady")], load_ended=110.0) is None


def test_drain_rate_is_backlog_removed_per_second_from_the_peak() -> None:
    # peak 600 at t=11, back to the baseline level 0 at t=17: 100 messages a second
    series = [(10.0, 300), (11.0, 600), (13.0, 400), (15.0, 200), (17.0, 0)]
    assert run._drain_rate(series, after=10.0, level=0) == 100.0
    assert run._drain_rate([(10.0, 0), (11.0, 0)], after=10.0, level=0) is None
