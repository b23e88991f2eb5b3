"""Redaction: the real corpus, property tests, the rules file."""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import redaction
from core.redaction import RulesError, card_ok, luhn_ok

R = redaction.load()
R_IP = redaction.load("", True)

# Independent of the rule under test: anything shaped like local@domain.tld.
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
IPV4_RE = re.compile(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b")


def redact(value: Any, r: redaction.Redactor) -> tuple[Any, redaction.Counts]:
    """``value`` redacted by ``r``, and the replacements per rule."""
    counts: redaction.Counts = {}
    return r.redact_value(value, counts), counts


def redacted(value: Any, r: redaction.Redactor = R) -> Any:
    return redact(value, r)[0]


# --- the corpus -------------------------------------------------------------------------------------


def test_no_email_survives_in_any_github_webhook(corpus: Path) -> None:
    files = sorted((corpus / "webhooks" / "github").glob("*.json"))
    assert files
    found_before = 0
    for file in files:
        doc = orjson.loads(file.read_bytes())
        found_before += len(EMAIL_RE.findall(file.read_text()))
        out, counts = redact(doc, R)
        text = orjson.dumps(out).decode()
        assert EMAIL_RE.findall(text) == [], file.name
        assert (
            counts.get("email", 0) >= len(EMAIL_RE.findall(orjson.dumps(doc).decode())) > 0 or "@" not in text
        )
    assert found_before > 100  # the corpus does exercise the rule


def test_webhook_secret_field_is_replaced(corpus: Path) -> None:
    doc = orjson.loads((corpus / "webhooks" / "github" / "ping.with-app_id.payload.json").read_bytes())
    doc["hook"]["config"]["secret"] = "a-real-looking-secret"  # GitHub masks it; a careless sender may not
    out, counts = redact(doc, R)
    assert out["hook"]["config"]["secret"] == "[REDACTED:credential]"
    assert counts["credential_field"] == 1
    assert out["hook"]["config"]["url"] == doc["hook"]["config"]["url"]  # the rest untouched


def test_log_lines_keep_ips_by_default_and_lose_them_when_asked(corpus: Path) -> None:
    lines = (corpus / "logs" / "OpenSSH_2k.log").read_text(errors="replace").splitlines()
    with_ip = [line for line in lines if IPV4_RE.search(line)]
    assert len(with_ip) > 100
    assert [R.redact_text(line, {}) for line in with_ip] == with_ip
    counts: dict[str, int] = {}
    out = [R_IP.redact_text(line, counts) for line in with_ip]
    assert not any(IPV4_RE.search(line) for line in out)
    assert counts["ipv4"] >= len(with_ip)


def test_hdfs_host_ports_lose_the_address_but_keep_the_port(corpus: Path) -> None:
    line = next(x for x in (corpus / "logs" / "HDFS_2k.log").read_text().splitlines() if ":50010" in x)
    out = R_IP.redact_text(line, {})
    assert "[REDACTED:ip]:50010" in out


# --- examples ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "rule"),
    [
        ("mail a.b+c@example.co.uk now", "mail [REDACTED:email] now", "email"),
        ("card 4111 1111 1111 1111.", "card [REDACTED:card].", "card"),
        ("card 4111-1111-1111-1111", "card [REDACTED:card]", "card"),
        ("key AKIAIOSFODNN7EXAMPLE", "key [REDACTED:aws_access_key_id]", "aws_access_key_id"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_access_key = [REDACTED:aws_secret_key]",
            "aws_secret_key",
        ),
        ("Authorization: Bearer abc.def-ghi_jkl", "Authorization: Bearer [REDACTED:token]", "bearer_token"),
        ("t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-_x", "t=[REDACTED:jwt]", "jwt"),
        ("password=hunter2 user=bob", "password=[REDACTED:credential] user=bob", "credential_pair"),
        ('{"api_key": "a b"}', '{"api_key": [REDACTED:credential]}', "credential_pair"),
        ("DB_PASSWORD: s3cr3t;", "DB_PASSWORD: [REDACTED:credential];", "credential_pair"),
        (
            "x -----BEGIN RSA PRIVATE KEY-----\nMIIE\nabc\n-----END RSA PRIVATE KEY----- y",
            "x [REDACTED:private_key] y",
            "private_key",
        ),
    ],
)
def test_each_rule(text: str, expected: str, rule: str) -> None:
    counts: dict[str, int] = {}
    assert R.redact_text(text, counts) == expected
    assert counts == {rule: 1}


def test_secret_keys_replace_any_value_type_and_keep_empty_ones() -> None:
    doc = {
        "Password": 1234,
        "X-Api-Key": {"nested": "v"},
        "github_token": ["a"],
        "token": None,
        "pwd": "",
        "n": 5,
    }
    out, counts = redact(doc, R)
    assert out == {
        "Password": "[REDACTED:credential]",
        "X-Api-Key": "[REDACTED:credential]",
        "github_token": "[REDACTED:credential]",
        "token": None,
        "pwd": "",
        "n": 5,
    }
    assert counts == {"credential_field": 3}


def test_secret_fields_keep_true_and_false_flags() -> None:
    doc = {"mobile": True, "pin": False, "phone": "+1 415 555 2671", "cvv": 123}
    out, counts = redact(doc, R)
    assert out == {
        "mobile": True,
        "pin": False,
        "phone": "[REDACTED:credential]",
        "cvv": "[REDACTED:credential]",
    }
    assert counts == {"credential_field": 2}


def test_keys_holding_emails_are_redacted() -> None:
    assert redacted({"by": {"bob@example.com": 1}}) == {"by": {"[REDACTED:email]": 1}}


def test_nothing_to_redact_returns_the_same_object_uncopied() -> None:
    doc = {"a": [1, 2.5, {"b": "plain text"}]}
    assert redact(doc, R) == (doc, {})
    assert redact(doc, R)[0] is doc


def test_not_ip_like_things_are_kept_even_with_ip_redaction() -> None:
    for text in ["at 10:15:30", "Cache::add", "version 1.2.3", "ratio 3:2"]:
        assert R_IP.redact_text(text, {}) == text
    assert R_IP.redact_text("from 2001:db8::ff00:42:8329 port 22", {}) == "from [REDACTED:ip] port 22"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("qty 2 4111 1111 1111 1111", "qty 2 [REDACTED:card]"),
        ("0000000000000 1", "0000000000000 1"),  # Luhn-valid, but no network issues cards starting with 0
        ("4111-1111-1111-1111-7", "[REDACTED:card]-7"),
        ("ref 1234 5678 9012 3456", "ref 1234 5678 9012 3456"),  # no window passes Luhn
        ("0000001 4111 1111 1111 1111 0", "0000001 [REDACTED:card] 0"),  # found by hypothesis
        (
            "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
            "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
        ),
    ],
)
def test_a_card_beside_other_numbers_is_still_found(text: str, expected: str) -> None:
    assert R.redact_text(text, {}) == expected


def test_luhn() -> None:
    assert luhn_ok("4111111111111111")
    assert luhn_ok("4111 1111 1111 1111")
    assert not luhn_ok("4111111111111112")


# --- properties -------------------------------------------------------------------------------------

# Text around a secret: words and punctuation that are not part of any pattern.
filler = st.text(alphabet=string.ascii_letters + string.digits + " .,;:!?()/-", max_size=40)
# Boundaries that end a token for every rule (a secret glued to letters is still found; these keep
# digit runs and key names from merging with the filler, as in real text).
sep = st.sampled_from([" ", "\n", " (", ") ", ", ", " | "])

emails = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    st.text(alphabet=string.ascii_letters + string.digits + "._%+-", min_size=1, max_size=20),
    st.text(alphabet=string.ascii_lowercase + string.digits + "-", min_size=1, max_size=15),
    st.text(alphabet=string.ascii_lowercase, min_size=2, max_size=6),
)


# Issuer prefixes and lengths: Visa, Mastercard (both series), Amex, Discover, JCB, UnionPay, Diners.
ISSUERS = [("4", 16), ("4", 13), ("4", 19), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16), ("34", 15),
           ("37", 15), ("6011", 16), ("65", 19), ("3530", 16), ("62", 17), ("36", 14), ("300", 14)]  # fmt: skip


def _with_luhn(digits: str) -> str:
    for check in "0123456789":
        if luhn_ok(digits + check):
            return digits + check
    raise AssertionError


cards = st.builds(
    # Written unbroken, or in the 4-4-4-4 groups of a 16-digit card.
    lambda issuer, body, spaced: (
        (" ".join(c[i : i + 4] for i in range(0, 16, 4)) if spaced and len(c) == 16 else c)
        if (c := _with_luhn(issuer[0] + body[: issuer[1] - len(issuer[0]) - 1]))
        else ""
    ),
    st.sampled_from(ISSUERS),
    st.text(alphabet=string.digits, min_size=18, max_size=18),
    st.booleans(),
)
aws_keys = st.builds(
    lambda p, rest: p + rest,
    st.sampled_from(["AKIA", "ASIA"]),
    st.text(alphabet=string.ascii_uppercase + string.digits, min_size=16, max_size=16),
)
jwts = st.builds(
    lambda a, b, c: f"eyJ{a}.{b}.{c}",
    *[st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=4, max_size=30)] * 3,
)
passwords = st.builds(
    lambda key, value: (f"{key}={value}", value),
    st.sampled_from(["password", "passwd", "secret", "api_key", "apikey", "token", "access_token"]),
    st.text(alphabet=string.ascii_letters + string.digits + "!#$%*+/", min_size=6, max_size=20),
)


@given(filler, sep, st.one_of(emails, cards, aws_keys, jwts), sep, filler)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_no_rule_leaks_the_value_it_matched(before: str, s1: str, secret: str, s2: str, after: str) -> None:
    out = R.redact_text(before + s1 + secret + s2 + after, {})
    assert secret not in out
    assert "[REDACTED:" in out


@given(filler, sep, passwords, sep, filler)
def test_credential_pairs_keep_the_key_and_lose_the_value(
    before: str, s1: str, pair: tuple[str, str], s2: str, after: str
) -> None:
    text, _value = pair
    out = R.redact_text(before + s1 + text + s2 + after, {})
    assert text not in out
    assert text.split("=")[0] + "=[REDACTED:credential]" in out


@given(st.text(max_size=200))
@settings(max_examples=500)
def test_redaction_is_idempotent_on_any_text(text: str) -> None:
    once = R_IP.redact_text(text, {})
    assert R_IP.redact_text(once, {}) == once


@given(filler, st.one_of(emails, cards, aws_keys, jwts), filler)
def test_redaction_is_idempotent_on_text_with_secrets(a: str, secret: str, b: str) -> None:
    once = R.redact_text(a + " " + secret + " " + b, {})
    assert R.redact_text(once, {}) == once


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=30) | emails,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_json_redaction_is_idempotent_and_leaves_no_email(value: Any) -> None:
    once = redacted(value)
    assert redacted(once) == once
    assert EMAIL_RE.search(orjson.dumps(once).decode()) is None


@given(st.text(alphabet=string.ascii_lowercase + " .,", max_size=200))
def test_text_without_secrets_is_unchanged(text: str) -> None:
    assert R_IP.redact_text(text, {}) == text


@given(st.text(alphabet=string.digits, min_size=13, max_size=19))
def test_luhn_failing_digit_runs_are_untouched(digits: str) -> None:
    text = f"order {digits} shipped"
    if not card_ok(digits):  # Luhn fails, or no network issues this prefix and length
        assert R.redact_text(text, {}) == text
    else:
        assert R.redact_text(text, {}) == "order [REDACTED:card] shipped"


# --- the rules file ---------------------------------------------------------------------------------


def _write(tmp_path: Path, doc: Any) -> str:
    path = tmp_path / "rules.json"
    path.write_bytes(orjson.dumps(doc) if not isinstance(doc, bytes) else doc)
    return str(path)


def test_rules_path_override_is_used(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {"rules": [{"name": "ticket", "pattern": "TCK-[0-9]+", "prefilter": {"contains": ["TCK-"]}}]},
    )
    r = redaction.load(path)
    assert r.redact_text("see TCK-42 and bob@example.com", {}) == "see [REDACTED:ticket] and bob@example.com"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (b"{not json", "not valid JSON"),
        ({"rules": []}, "non-empty list"),
        ({"rules": [{"name": "x", "pattern": "("}]}, "rule 'x': invalid pattern"),
        ({"rules": [{"name": "x", "pattern": "a", "validator": "nope"}]}, "unknown validator"),
        ({"rules": [{"name": "x", "pattern": "a", "label": "Bad Label"}]}, "'label'"),
        ({"rules": [{"name": "x", "pattern": "a"}, {"name": "x", "pattern": "b"}]}, "duplicate rule name"),
        ({"rules": [{"name": "x", "pattern": "a", "prefilter": {"contains_ci": ["UP"]}}]}, "lower-case"),
        ({"rules": [{"name": "x", "pattern": "a", "extra": 1}]}, "unknown field"),
    ],
)
def test_invalid_rule_files_fail_clearly(tmp_path: Path, doc: Any, message: str) -> None:
    path = _write(tmp_path, doc)
    with pytest.raises(RulesError, match=re.escape(message)) as info:
        redaction.load(path)
    assert path in str(info.value)


def test_missing_rules_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read"):
        redaction.load(str(tmp_path / "absent.json"))


# --- issue 15's red-team findings, each a regression test ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("key slk_" + "A" * 43 + " used", "key [REDACTED:sluice_key] used"),
        ("GH ghp_" + "a1" * 18, "GH [REDACTED:github_token]"),
        ("stripe rk_live_" + "Z9" * 12, "stripe [REDACTED:stripe_key]"),
        ("xoxb-1234567890-abcdefghijkl", "[REDACTED:slack_token]"),
        ("upstream Basic dXNlcjpwYXNz failed", "upstream Basic [REDACTED:token] failed"),
        ("postgres://app:pw@db:5432/x", "postgres://[REDACTED:credential]@db:5432/x"),
        ("redis://:pw@localhost:6379/0", "redis://[REDACTED:credential]@localhost:6379/0"),
        ("the password is hunter2", "the password is [REDACTED:credential]"),
        (
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----",
            "[REDACTED:private_key]",
        ),
        ("ssn 219-45-6789", "ssn [REDACTED:ssn]"),
        ("iban DE89 3704 0044 0532 0130 00.", "iban [REDACTED:iban]."),
        # found by hypothesis: a word shaped like a country code and check digits before the IBAN
        ("AA00 DE89370400440532013000 ", "AA00 [REDACTED:iban] "),
        ("ref AB12 DE89 3704 0044 0532 0130 00", "ref AB12 [REDACTED:iban]"),
        ("DE89 3704 0044 0532 0130 00 GB82 WEST 1234 5698 7654 32", "[REDACTED:iban] [REDACTED:iban]"),
        ("call +14155552671 or (415) 555-2671", "call [REDACTED:phone] or [REDACTED:phone]"),
        ("card 4111.1111.1111.1111", "card [REDACTED:card]"),
        ("by josé.garcía@exämple.es", "by [REDACTED:email]"),
        ('to "john doe"@example.org', "to [REDACTED:email]"),
        ("dependabot[bot]@users.noreply.github.com", "[REDACTED:email]"),
    ],
)
def test_issue_15_leaks_are_redacted(text: str, expected: str) -> None:
    assert R.redact_text(text, {}) == expected


@pytest.mark.parametrize(
    "text",
    [
        "1478187955 2016-11-03 12:00:01 INFO started",  # an epoch followed by a date
        "12:30:45.123 4111 1111 2222 3333 I proc",  # a time with milliseconds followed by process ids
        " ".join(str(n) for n in range(1, 21)),  # a table of small integers
        "request a3f4111111111111111b done",  # digits inside a hexadecimal request id
        "x-id: 3f-4111111111111111-9a",
        "token=Token{78af589",
    ],
)
def test_issue_15_false_positives_are_kept(text: str) -> None:
    assert R.redact_text(text, {}) == text


def test_sensitive_field_names_of_issue_15() -> None:
    names = ["cvv", "cvc", "pin", "otp", "ssn", "iban", "credential", "auth", "session_id", "phone"]
    out, counts = redact({name: "v" for name in names}, R)
    assert out == {name: "[REDACTED:credential]" for name in names}
    assert counts == {"credential_field": len(names)}


def test_a_card_sent_as_a_json_number_is_replaced() -> None:
    assert redacted({"n": 4111111111111111, "id": 1234567890123}) == {
        "n": "[REDACTED:card]",
        "id": 1234567890123,
    }
