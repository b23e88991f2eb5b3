"""Redaction measured: recall and precision per category, and speed against today's rules.

``python -m loadtest.bench.redaction [--corpus DIR]`` prints the tables ``make bench`` prints.

- Recall: the labelled corpus ``tests/fixtures/redaction/positives.jsonl``; a positive is recalled when
  none of its secret values survives (IP addresses with the setting on, everything else with it off).
- Precision: markers on the hard negatives (``negatives.jsonl``: any marker is false), and on the shared
  corpus's log lines and GitHub webhooks, where every marker is checked: what it replaced must
  independently be a thing of its category (``false_markers``).
- Speed: microseconds per KB of webhook JSON and per log line, the rules of today against the frozen
  baseline (``redaction_baseline.py`` and its rules file: the engine as it was before issue 15),
  measured in alternating rounds in the same process; the best round of each counts.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import orjson
import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn as stdnum_luhn
from stdnum.us import ssn as stdnum_ssn

from core import redaction
from loadtest.bench import redaction_baseline

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "redaction"
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
MARKER = re.compile(r"\[REDACTED:([a-z0-9_]+)\]")
# Secret fields the shared corpus really holds: GitHub masks a hook's secret as "********".
CORPUS_SECRET_FIELDS = frozenset({"secret"})


class Engine(Protocol):
    """What the bench needs of a redactor (today's or the baseline's)."""

    def redact_text(self, text: str, counts: dict[str, int]) -> str: ...

    def redact_value(self, value: Any, counts: dict[str, int], serialized: str | None = None) -> Any: ...


# --- the checker: what a marker replaced must independently be a thing of its category --------------

_STRICT_EMAIL = re.compile(
    r'(?:"[^"\r\n]+"|[\w.%+-]+(?:\[bot\])?)@(?:[^\W_](?:[\w-]*[^\W_])?\.)+(?:[^\W\d_]{2,}|xn--[a-z0-9-]+)'
)
_CARD_ISSUER = re.compile(r"(?:4|5[1-5]|2[2-7]|3[0-9]|6[0-9])[0-9]+")


def _is_card(span: str) -> bool:
    digits = re.sub(r"[ .-]", "", span)
    return (
        13 <= len(digits) <= 19
        and _CARD_ISSUER.fullmatch(digits) is not None
        and stdnum_luhn.is_valid(digits)
    )


def _is_phone(span: str) -> bool:
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(span, "US")))
    except phonenumbers.NumberParseException:
        return False


def _is_ip(span: str) -> bool:
    try:
        ipaddress.ip_address(span)
    except ValueError:
        return False
    return True


SPAN_CHECKS: dict[str, Callable[[str], bool]] = {
    "email": lambda s: _STRICT_EMAIL.fullmatch(s) is not None,
    "ip": _is_ip,
    "card": _is_card,
    "phone": _is_phone,
    "ssn": lambda s: bool(stdnum_ssn.is_valid(s.replace(" ", "-"))),
    "iban": lambda s: bool(stdnum_iban.is_valid(s)),
}


def replaced_spans(original: str, redacted: str) -> Iterator[tuple[str, str]]:
    """(label, what it replaced) for every marker in ``redacted``, aligned on the text between markers."""
    labels = MARKER.findall(redacted)
    pieces = MARKER.split(redacted)[0::2]
    m = re.fullmatch("(.+?)".join(re.escape(p) for p in pieces), original, re.DOTALL)
    if m is None:
        raise ValueError(f"{redacted!r} is not a redaction of {original!r}")
    yield from zip(labels, m.groups(), strict=True)


def false_markers(original: str, redacted: str) -> list[tuple[str, str]]:
    """The markers whose replaced text is not of their category. A category without a check (tokens,
    credentials...) has no true case in the shared corpus, so any such marker there is false."""
    return [(label, span) for label, span in replaced_spans(original, redacted)
            if not SPAN_CHECKS.get(label, lambda _: False)(span)]  # fmt: skip


def leaf_pairs(before: Any, after: Any, key: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(key, original, redacted) for every key and scalar of two JSON documents of the same shape."""
    if isinstance(before, dict):
        for (k, v), (k2, v2) in zip(before.items(), after.items(), strict=True):
            yield "", k, k2
            yield from leaf_pairs(v, v2, k)
    elif isinstance(before, list):
        for v, v2 in zip(before, after, strict=True):
            yield from leaf_pairs(v, v2, key)
    else:
        yield key, before, after


def webhook_false_markers(doc: Any, redacted: Any) -> list[tuple[str, Any, Any]]:
    """False markers in a redacted webhook: (key, original, redacted) per wrong replacement."""
    bad: list[tuple[str, Any, Any]] = []
    for key, before, after in leaf_pairs(doc, redacted):
        if before == after or (after == "[REDACTED:credential]" and key in CORPUS_SECRET_FIELDS):
            continue
        if not isinstance(before, str):
            bad.append((key, before, after))
        else:
            bad.extend((key, label, span) for label, span in false_markers(before, after))
    return bad


# --- the labelled corpus ---------------------------------------------------------------------------


def jsonl(name: str) -> list[dict[str, Any]]:
    """The cases of one file of the labelled corpus."""
    return [orjson.loads(line) for line in (FIXTURES / name).read_bytes().splitlines() if line.strip()]


def redacted_case(case: dict[str, Any], r: Engine) -> str:
    """A case's log line, or its JSON event serialized, after redaction."""
    if "text" in case:
        return r.redact_text(case["text"], {})
    return orjson.dumps(r.redact_value(case["json"], {})).decode()


def recall(positives: list[dict[str, Any]], r: Engine, r_ip: Engine) -> dict[str, tuple[int, int]]:
    """Per category: (positives, recalled). IP addresses are measured with the setting on."""
    out: dict[str, tuple[int, int]] = {}
    for case in positives:
        out_text = redacted_case(case, r_ip if case["category"] == "ip" else r)
        ok = "[REDACTED:" in out_text and not any(s in out_text for s in case["secrets"])
        total, good = out.get(case["category"], (0, 0))
        out[case["category"]] = (total + 1, good + ok)
    return out


def corpus_inputs(corpus: Path) -> tuple[list[Any], list[str], list[str]]:
    """The shared corpus's GitHub webhooks (parsed and as orjson text) and its log lines."""
    docs = [orjson.loads(p.read_bytes()) for p in sorted((corpus / "webhooks" / "github").glob("*.json"))]
    lines = [line for p in sorted((corpus / "logs").glob("*.log"))
             for line in p.read_text(errors="replace").splitlines()]  # fmt: skip
    return docs, [orjson.dumps(d).decode() for d in docs], lines


def precision(
    negatives: list[dict[str, Any]], docs: list[Any], lines: list[str], r_ip: Engine
) -> dict[str, int]:
    """False markers: on the hard negatives (any marker but an IP one), on the corpus lines and webhooks."""
    neg = sum(bool(set(MARKER.findall(redacted_case(c, r_ip))) - {"ip"}) for c in negatives)
    log = 0
    for line in lines:
        out = r_ip.redact_text(line, {})
        if out != line:
            try:
                log += len(false_markers(line, out))
            except ValueError:  # not alignable: count the line as wrong
                log += 1
    hooks = sum(len(webhook_false_markers(d, r_ip.redact_value(d, {}))) for d in docs)
    return {"hard_negatives": neg, "corpus_logs": log, "corpus_webhooks": hooks}


# --- speed -----------------------------------------------------------------------------------------


def speed(engines: dict[str, tuple[Engine, Engine]], docs: list[Any], texts: list[str], lines: list[str],
          rounds: int) -> dict[str, dict[str, float]]:  # fmt: skip
    """Best of ``rounds`` alternating rounds: µs per KB of webhook JSON and per log line, IP off and on."""
    kb = sum(len(t) for t in texts) / 1024
    best: dict[str, dict[str, float]] = {name: {} for name in engines}
    for _ in range(rounds):
        for name, (r, r_ip) in engines.items():
            for suffix, eng in (("", r), ("_ip", r_ip)):
                start = time.perf_counter()
                for d, t in zip(docs, texts, strict=True):
                    eng.redact_value(d, {}, t)
                json_s = time.perf_counter() - start
                start = time.perf_counter()
                for line in lines:
                    eng.redact_text(line, {})
                log_s = time.perf_counter() - start
                row = best[name]
                row[f"json_us_per_kb{suffix}"] = min(
                    row.get(f"json_us_per_kb{suffix}", 1e9), json_s / kb * 1e6
                )
                row[f"log_us_per_line{suffix}"] = min(
                    row.get(f"log_us_per_line{suffix}", 1e9), log_s / len(lines) * 1e6
                )
    return best


def run(corpus: Path = DEFAULT_CORPUS, rounds: int = 5) -> dict[str, Any]:
    """Every redaction figure of ``make bench``; without the shared corpus, recall and the hard
    negatives only."""
    today = (redaction.load(), redaction.load("", True))
    baseline = (redaction_baseline.load(), redaction_baseline.load("", True))
    positives, negatives = jsonl("positives.jsonl"), jsonl("negatives.jsonl")
    have_corpus = (corpus / "logs").is_dir()
    docs, texts, lines = corpus_inputs(corpus) if have_corpus else ([], [], [])
    result: dict[str, Any] = {
        "recall": {"today": recall(positives, *today), "baseline": recall(positives, *baseline)},
        "precision": {"today": precision(negatives, docs, lines, today[1]),
                      "baseline": precision(negatives, docs, lines, baseline[1])},
        "corpus": str(corpus) if have_corpus else None,
    }  # fmt: skip
    if have_corpus:
        result["speed"] = speed({"today": today, "baseline": baseline}, docs, texts, lines, rounds)
        result["speed"]["ratio"] = {
            k: v / result["speed"]["baseline"][k] for k, v in result["speed"]["today"].items()
        }
    return result


def rows(result: dict[str, Any]) -> tuple[list[list[Any]], list[list[Any]], list[list[Any]]]:
    """The recall, precision and speed tables' rows."""
    today, base = result["recall"]["today"], result["recall"]["baseline"]
    recall_rows = [[cat, n, good, good / n, base[cat][1] / n] for cat, (n, good) in sorted(today.items())]
    precision_rows = [[k.replace("_", " "), v, result["precision"]["baseline"][k]]
                      for k, v in result["precision"]["today"].items()]  # fmt: skip
    speed_rows: list[list[Any]] = []
    if "speed" in result:
        s = result["speed"]
        labels = {"json_us_per_kb": "us per KB of webhook JSON", "log_us_per_line": "us per log line",
                  "json_us_per_kb_ip": "us per KB of webhook JSON, IP on", "log_us_per_line_ip": "us per log line, IP on"}  # fmt: skip
        speed_rows = [[labels[k], s["today"][k], s["baseline"][k], s["ratio"][k]] for k in labels]
    return recall_rows, precision_rows, speed_rows


def min_recall(result: dict[str, Any]) -> float:
    """The lowest recall over the categories of the labelled corpus."""
    return min(good / n for n, good in result["recall"]["today"].values())


def main() -> None:
    from loadtest.measures import table

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    result = run(args.corpus, args.rounds)
    recall_rows, precision_rows, speed_rows = rows(result)
    print(table(recall_rows, ["category", "positives", "recalled", "recall", "baseline recall"], "Recall"))
    print(table(precision_rows, ["false markers on", "today", "baseline"], "Precision"))
    if speed_rows:
        print(table(speed_rows, ["figure", "today", "baseline", "x baseline"], "Speed"))


if __name__ == "__main__":
    main()
