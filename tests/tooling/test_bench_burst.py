"""The burst row of ``make bench``: its bodies are the mix the issue names, and its figures reach the
printed Targets block and ``bench.json``'s ``targets`` (from a recorded result; no stack is started)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from loadtest.bench import __main__ as bench
from loadtest.bench import burst

RESULT = {
    "records": 20000, "requests": 80, "clients": 4, "accepted": 20000, "stored": 20000, "all_stored": True,
    "accept_seconds": 18.5, "accepted_per_second": 1083.9, "drain_seconds": 32.2, "stored_after_s": 50.7,
    "records_per_second": 394.8, "lag_p50_s": 17.9, "lag_p95_s": 20.8, "peak_backlog": 13710,
    "peak_rss_mb": 636, "peak_rss_emulator_mb": 439, "failures": [],
    "raw": {"records": 4000, "seconds": 3.56, "records_per_second": 1124.6}, "share_of_raw": 0.351,
    "load_average": [6.4, 5.4, 4.8], "load_average_before": [5.9, 5.8, 4.9],
}  # fmt: skip


def test_the_burst_is_80_percent_log_lines_and_20_percent_1_to_8_kb_events() -> None:
    bodies = burst.bodies(2000)
    lines = sum(b.data.count(b"\n") for b in bodies if b.route == "/ingest")
    events = [e for b in bodies if b.route == "/events" for e in orjson.loads(b.data)]
    assert (lines, len(events)) == (1600, 400)
    assert {b.content_type for b in bodies} == {"text/plain", "application/json"}
    assert all(1024 <= len(orjson.dumps(e)) <= 8192 for e in events)
    assert bodies[0].route != bodies[1].route  # interleaved request by request


@pytest.mark.parametrize(("share", "met"), [(0.351, False), (0.65, True)])
def test_the_burst_row_is_a_target_with_burst_in_its_name(share: float, met: bool) -> None:
    result = {"cpu": [], "cold_start": {"rows": []}, "burst": {**RESULT, "share_of_raw": share},
              "machine": "x", "date": "d"}  # fmt: skip
    targets = bench._targets(result)
    (name,) = [n for n in targets if "burst" in n]
    assert targets[name]["met"] is met and targets[name]["target"] == 0.6
    result["targets"] = targets
    printed = bench.report(result)
    assert name in printed.split("Targets", 1)[1]
    for figure in ("1,084", "32.20", "395", "1,125", str(share), "17.9 / 20.8", "636 (439)", "5.90 / 6.40"):
        assert figure in printed


def test_skip_e2e_leaves_the_burst_out_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the burst ran")

    monkeypatch.setattr(burst, "run_child", refuse)
    monkeypatch.setattr(bench.cpu, "run", lambda **kwargs: [])
    monkeypatch.setattr(bench.protocols, "run", lambda **kwargs: [])
    monkeypatch.setattr(bench.redaction, "run", lambda **kwargs: {})
    monkeypatch.setattr(bench.coldstart, "run", lambda **kwargs: {"rows": []})
    assert bench.main(["--skip-e2e", "--out", str(tmp_path / "bench.json")]) == 0
    assert "burst" not in orjson.loads((tmp_path / "bench.json").read_bytes())


def test_the_simpler_raw_loop_is_reported_beside_the_same_calls_one() -> None:
    result = {**RESULT, "raw_simple": {"records": 4000, "seconds": 4.0, "records_per_second": 1000.0}}
    printed = dict((str(k), str(v)) for k, v in burst.rows(result))
    (name,) = [k for k in printed if "simpler raw loop" in k]
    assert printed[name] == "1000.0; 0.395"
    assert not [k for k in dict((str(k), v) for k, v in burst.rows(RESULT)) if "simpler" in k]
