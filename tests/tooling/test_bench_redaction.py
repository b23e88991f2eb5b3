"""The redaction part of ``make bench``: its figures, its tables and its targets."""

from __future__ import annotations

from pathlib import Path

from loadtest.bench import __main__ as bench
from loadtest.bench import redaction


def test_without_the_shared_corpus_it_measures_the_labelled_corpus_only(tmp_path: Path) -> None:
    # GIVEN no shared corpus WHEN the redaction bench runs
    result = redaction.run(corpus=tmp_path / "absent", rounds=1)
    # THEN recall and the hard negatives are measured, today's rules against the baseline's
    assert redaction.min_recall(result) >= 0.99
    assert result["precision"]["today"] == {"hard_negatives": 0, "corpus_logs": 0, "corpus_webhooks": 0}
    assert result["precision"]["baseline"]["hard_negatives"] > 0
    assert "speed" not in result and result["corpus"] is None
    recall_rows, precision_rows, speed_rows = redaction.rows(result)
    assert len(recall_rows) >= 21 and speed_rows == []


def test_redaction_targets_compare_in_the_right_direction() -> None:
    result = {
        "cpu": [],
        "cold_start": {"rows": []},
        "redaction": {
            "recall": {"today": {"email": (10, 10), "card": (10, 9)}, "baseline": {}},
            "precision": {"today": {"hard_negatives": 0, "corpus_logs": 1}},
            "corpus": "x",
            "speed": {
                "today": {"json_us_per_kb": 9.0, "log_us_per_line": 2.0},
                "baseline": {"json_us_per_kb": 10.0, "log_us_per_line": 1.0},
                "ratio": {"json_us_per_kb": 0.9, "log_us_per_line": 2.0, "json_us_per_kb_ip": 1.0,
                          "log_us_per_line_ip": 1.0},
            },
        },
    }  # fmt: skip
    targets = bench._targets(result)
    recall = targets["redaction recall, lowest category"]
    assert (recall["value"], recall["met"]) == (0.9, False)  # a minimum: higher is better
    assert targets["redaction false markers, hard negatives + shared corpus"]["met"] is False
    assert targets["redaction time, webhook JSON, x today's rules before issue 15"]["met"] is True
    assert targets["redaction time, log lines, x today's rules before issue 15"]["met"] is False
