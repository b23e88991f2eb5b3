"""Redaction measured: recall per category on a labelled corpus, no false markers on hard negatives and
on the shared corpus, and property tests that no generated secret of any kind survives.

The checker of markers and the corpus readers are shared with the bench (``loadtest/bench/redaction.py``).
The labelled corpus is ``tests/fixtures/redaction/``: ``positives.jsonl`` (a category, a log line or a
JSON event, and the secret values that must not survive) and ``negatives.jsonl`` (look-alikes that must
come out unchanged). ``make bench`` prints the same figures as a table.
"""

from __future__ import annotations

import re
import string
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import iban as stdnum_iban
from stdnum import luhn as stdnum_luhn
from stdnum.iso7064 import mod_97_10
from stdnum.us import ssn as stdnum_ssn

from core import redaction
from loadtest.bench.redaction import false_markers, jsonl, redacted_case, webhook_false_markers

R = redaction.load()
R_IP = redaction.load("", True)
MARKER = re.compile(r"\[REDACTED:([a-z0-9_]+)\]")


POSITIVES = jsonl("positives.jsonl")
NEGATIVES = jsonl("negatives.jsonl")


# --- recall -----------------------------------------------------------------------------------------


def test_the_corpus_has_ten_realistic_positives_per_category_and_hard_negatives() -> None:
    per_category: dict[str, int] = defaultdict(int)
    for case in POSITIVES:
        per_category[case["category"]] += 1
        assert case["secrets"] and all(case["secrets"])
    assert len(per_category) >= 21
    assert min(per_category.values()) >= 10, per_category
    assert len(NEGATIVES) >= 150


@pytest.mark.parametrize("category", sorted({c["category"] for c in POSITIVES}))
def test_recall_per_category_is_at_least_99_percent(category: str) -> None:
    # IP addresses are redacted only with the setting on; every other category with the default.
    r = R_IP if category == "ip" else R
    cases = [c for c in POSITIVES if c["category"] == category]
    leaked = []
    for case in cases:
        out = redacted_case(case, r)
        if any(secret in out for secret in case["secrets"]) or "[REDACTED:" not in out:
            leaked.append(out)
    recall = 1 - len(leaked) / len(cases)
    assert recall >= 0.99, (category, recall, leaked)


def test_ip_addresses_are_kept_with_the_setting_off() -> None:
    for case in (c for c in POSITIVES if c["category"] == "ip"):
        out = redacted_case(case, R)
        assert all(secret in out for secret in case["secrets"]), out


# --- precision --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", NEGATIVES, ids=[f"{i}-{c['kind']}" for i, c in enumerate(NEGATIVES)])
def test_hard_negatives_get_no_marker(case: dict[str, Any]) -> None:
    assert MARKER.search(redacted_case(case, R)) is None
    # With IP redaction on, only IP markers (the negatives hold real addresses beside look-alikes).
    assert set(MARKER.findall(redacted_case(case, R_IP))) <= {"ip"}


def test_token_object_reprs_are_not_credentials() -> None:
    assert R.redact_text("token=Token{78af589", {}) == "token=Token{78af589"


def test_the_checker_catches_a_false_marker() -> None:
    assert false_markers("at 1478187955 2016", "at [REDACTED:card] 2016") == [("card", "1478187955")]
    assert false_markers("mail bob@example.com", "mail [REDACTED:email]") == []
    assert false_markers("x token=abc", "x token=[REDACTED:credential]") == [("credential", "abc")]


def test_no_false_marker_on_the_shared_corpus_log_lines(corpus: Path) -> None:
    files = sorted((corpus / "logs").glob("*.log"))
    lines = [line for f in files for line in f.read_text(errors="replace").splitlines()]
    assert len(lines) >= 10_000
    bad = []
    for line in lines:
        out = R_IP.redact_text(line, {})
        if "[REDACTED:" in out:
            bad.extend(false_markers(line, out))
    assert bad == []


def test_no_false_marker_on_the_shared_corpus_webhooks(corpus: Path) -> None:
    files = sorted((corpus / "webhooks" / "github").glob("*.json"))
    assert len(files) >= 75
    bad = []
    for file in files:
        doc = orjson.loads(file.read_bytes())
        bad.extend((file.name, *m) for m in webhook_false_markers(doc, R_IP.redact_value(doc, {})))
    assert bad == []


# --- properties: no generated secret of any kind survives ------------------------------------------

filler = st.text(alphabet=string.ascii_letters + string.digits + " .,;:!?()/", max_size=40)
sep = st.sampled_from([" ", "\n", " (", ") ", ", ", " | ", "\t", " - "])


def _luhn(body: str) -> str:
    return body + stdnum_luhn.calc_check_digit(body)


ISSUERS = [("4", 16), ("4", 13), ("4", 19), ("51", 16), ("53", 16), ("2221", 16), ("2720", 16), ("34", 15),
           ("37", 15), ("6011", 16), ("65", 16), ("3530", 16), ("62", 16), ("36", 14), ("305", 14)]  # fmt: skip


@st.composite
def cards(draw: st.DrawFn) -> str:
    prefix, length = draw(st.sampled_from(ISSUERS))
    number = _luhn(prefix + draw(st.text(string.digits, min_size=length - len(prefix) - 1,
                                         max_size=length - len(prefix) - 1)))  # fmt: skip
    separator = draw(st.sampled_from(["", " ", "-", "."]))
    if not separator:
        return number
    if length == 15:
        return separator.join([number[:4], number[4:10], number[10:]])
    if length == 16:
        return separator.join(number[i : i + 4] for i in range(0, 16, 4))
    return number


ssns = st.builds(
    lambda a, g, s: f"{a:03d}-{g:02d}-{s:04d}",
    st.integers(1, 899).filter(lambda a: a != 666),
    st.integers(1, 99),
    st.integers(1, 9999),
).filter(lambda s: bool(stdnum_ssn.is_valid(s)))

# Country, BBAN length and the BBAN alphabet (digits, or capitals and digits where the format allows).
IBAN_FORMATS = [("DE", 18, string.digits), ("FR", 23, string.digits), ("NL", 14, None), ("ES", 20, string.digits),
                ("BE", 12, string.digits), ("AT", 16, string.digits), ("PL", 24, string.digits)]  # fmt: skip


@st.composite
def ibans(draw: st.DrawFn) -> str:
    country, length, alphabet = draw(st.sampled_from(IBAN_FORMATS))
    if alphabet is None:  # NL: 4 bank letters, 10 digits
        bban = draw(st.text(string.ascii_uppercase, min_size=4, max_size=4)) + draw(
            st.text(string.digits, min_size=10, max_size=10)
        )
    else:
        bban = draw(st.text(alphabet, min_size=length, max_size=length))
    check = mod_97_10.calc_check_digits(bban + country)
    compact = country + check + bban
    if not stdnum_iban.is_valid(compact):  # a national check digit inside the BBAN (FR, ES, BE, PL...)
        return "DE89370400440532013000"
    spaced = draw(st.booleans())
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4)) if spaced else compact


TOKEN_SHAPES = [("ghp_", 36, string.ascii_letters + string.digits), ("gho_", 36, string.ascii_letters + string.digits),
                ("ghu_", 36, string.ascii_letters + string.digits), ("ghs_", 36, string.ascii_letters + string.digits),
                ("ghr_", 36, string.ascii_letters + string.digits), ("github_pat_", 82, string.ascii_letters + "_"),
                ("glpat-", 20, string.ascii_letters + string.digits + "-_"), ("sk_live_", 24, string.ascii_letters),
                ("rk_live_", 30, string.digits), ("sk_test_", 99, string.ascii_letters), ("whsec_", 32, string.ascii_letters),
                ("xoxb-", 40, string.digits + "-"), ("xoxp-", 50, string.ascii_letters), ("AIza", 35, string.ascii_letters + "_-"),
                ("SK", 32, "0123456789abcdef"), ("slk_", 43, string.ascii_letters + "_-"), ("AKIA", 16, string.ascii_uppercase),
                ("ASIA", 16, string.digits)]  # fmt: skip


@st.composite
def tokens(draw: st.DrawFn) -> str:
    prefix, length, alphabet = draw(st.sampled_from(TOKEN_SHAPES))
    return prefix + draw(st.text(alphabet, min_size=length, max_size=length))


emails = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    st.text(alphabet=string.ascii_letters + string.digits + "._%+-éüçø", min_size=1, max_size=20),
    st.text(alphabet=string.ascii_lowercase + string.digits + "-äö", min_size=1, max_size=15),
    st.sampled_from(["com", "de", "co.uk", "io", "museum", "xn--p1ai"]),
)


@st.composite
def phones(draw: st.DrawFn) -> str:
    region = draw(st.sampled_from(["US", "GB", "DE", "FR", "IN", "AU", "JP", "BR"]))
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    assert example is not None
    national = str(example.national_number)
    # Vary the last digits; keep only numbers the numbering plan has (what "valid" means).
    tail = draw(st.text(string.digits, min_size=3, max_size=3))
    number = phonenumbers.parse(f"+{example.country_code}{national[:-3]}{tail}")
    if not phonenumbers.is_valid_number(number):
        number = example
    style = draw(
        st.sampled_from([phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL])
    )
    if region == "US" and draw(st.booleans()):
        style = phonenumbers.PhoneNumberFormat.NATIONAL
    return phonenumbers.format_number(number, style)


@pytest.mark.parametrize("kind", ["card", "ssn", "iban", "token", "email", "phone"])
def test_no_generated_secret_survives(kind: str) -> None:
    strategy = {
        "card": cards(),
        "ssn": ssns,
        "iban": ibans(),
        "token": tokens(),
        "email": emails,
        "phone": phones(),
    }[kind]

    @given(filler, sep, strategy, sep, filler)
    @settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
    def check(before: str, s1: str, secret: str, s2: str, after: str) -> None:
        out = R.redact_text(before + s1 + secret + s2 + after, {})
        assert secret not in out
        assert "[REDACTED:" in out

    check()


@given(cards())
def test_cards_sent_as_json_numbers_or_strings_are_replaced(card: str) -> None:
    digits = re.sub(r"[ .-]", "", card)
    out = R.redact_value(
        {"payment": {"pan": int(digits), "shown": card, "amount": 1299}, "n": [int(digits)]}, {}
    )
    assert out == {"payment": {"pan": "[REDACTED:credential]", "shown": "[REDACTED:card]", "amount": 1299},
                   "n": ["[REDACTED:card]"]}  # fmt: skip
