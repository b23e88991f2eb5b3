"""FROZEN copy of ``core/redaction.py`` as of the merge base of issue 15, the bench's baseline: do not edit.

``make bench`` times today's redaction against this engine and its rules
(``redaction_baseline_rules.json``, the rules file of the same commit) in the same run.

Redaction of secrets and personal data from log text and JSON values, with counts per rule.

The rules are data (``core/redaction_rules.json``, or the file named by ``REDACTION_RULES_PATH``),
compiled once per process. Every string goes through the rules in file order; a rule only runs its regex
when a cheap prefilter passes (``'@' in s`` before the e-mail regex, a minimum length before the card
regex...), because most strings in a webhook are short names, URLs and dates that match nothing.

A JSON key that names a secret (``password``, ``api_key``, ``Authorization``...) has its whole value
replaced, whatever its type. Keys are redacted like any other string (a map keyed by e-mail address
would otherwise leak); two keys that redact to the same text keep the last value.

Replacements look like ``[REDACTED:email]``. No rule matches a marker, and rules with a ``value`` group
refuse to start at one, so redacting a redacted value changes nothing.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

DEFAULT_RULES_PATH = Path(__file__).parent / "redaction_baseline_rules.json"
MARKER_PREFIX = "[REDACTED:"
SECRET_FIELD_RULE = "credential_field"

Counts = dict[str, int]

_LABEL_RE = re.compile(r"^[a-z0-9_]+$")
_SETTINGS = frozenset({"redact_ip_addresses"})
_PREFILTER_KEYS = frozenset({"contains", "contains_ci", "min_length"})
_RULE_KEYS = frozenset({"name", "label", "pattern", "prefilter", "validator", "setting"})


class RulesError(ValueError):
    """The redaction rules file is missing, not JSON, or describes an invalid rule; the message says where."""


def luhn_ok(candidate: str) -> bool:
    """True when the digits of ``candidate`` (separators ignored) pass the Luhn check of card numbers."""
    digits = [ord(c) - 48 for c in candidate if "0" <= c <= "9"]
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _ipv6_ok(candidate: str) -> bool:
    # The pattern finds colon-separated hex runs; only real addresses with some substance count, so a
    # clock time ("10:15:30") or a C++ scope ("Cache::add") is left alone.
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return any(c.isdigit() for c in candidate) and sum(c != ":" for c in candidate) >= 4


def _ipv4_ok(candidate: str) -> bool:
    try:
        ipaddress.IPv4Address(candidate)
    except ValueError:
        return False
    return True


_SEPARATED = re.compile(r"([ -])")


def _card_windows(candidate: str, marker: str) -> tuple[str, int]:
    """Replace the card numbers inside a run of digit groups; (new text, how many).

    The pattern takes the whole run of digits and single separators, so a card beside another number
    ("qty 2 4111 1111 1111 1111") arrives with extra groups. Windows of whole groups are tried, longest
    first, left to right: 13 to 19 digits, either one unbroken run or at most 5 groups of at least 3
    digits (4-4-4-4, 4-6-5, 4-4-4-4-3...), passing Luhn. Without the group rule one in ten runs of small
    numbers ("1 2 3 ... 13") would pass Luhn by chance.
    """
    parts = _SEPARATED.split(candidate)  # digit groups at even positions, separators at odd ones
    groups = parts[0::2]
    out: list[str] = []
    hits = 0
    start = 0
    while start < len(groups):
        found = None
        ends = []
        digits = 0
        for end in range(start + 1, min(len(groups), start + 5) + 1):
            size = len(groups[end - 1])
            if end - start > 1 and (size < 3 or len(groups[start]) < 3):
                break
            digits += size
            if digits > 19:
                break
            if digits >= 13:
                ends.append(end)
        for end in reversed(ends):
            if luhn_ok("".join(groups[start:end])):
                found = end
                break
        if found is None:
            out.append(groups[start])
            if start < len(groups) - 1:
                out.append(parts[2 * start + 1])
            start += 1
            continue
        out.append(marker)
        hits += 1
        if found < len(groups):
            out.append(parts[2 * found - 1])
        start = found
    return "".join(out), hits


def _check(ok: Callable[[str], bool]) -> Callable[[str, str], tuple[str, int]]:
    def validate(candidate: str, marker: str) -> tuple[str, int]:
        return (marker, 1) if ok(candidate) else (candidate, 0)

    return validate


# A validator gets a match and the rule's marker and returns (replacement, replacements made).
VALIDATORS: dict[str, Callable[[str, str], tuple[str, int]]] = {
    "luhn": _card_windows,
    "ipv4": _check(_ipv4_ok),
    "ipv6": _check(_ipv6_ok),
}


@dataclass(frozen=True)
class Rule:
    """One compiled rule. ``marker`` replaces the match, or only its ``value`` group when it has one."""

    name: str
    marker: str
    regex: re.Pattern[str]
    contains: tuple[str, ...]
    contains_ci: tuple[str, ...]
    min_length: int
    validator: Callable[[str, str], tuple[str, int]] | None
    has_value_group: bool


def _prefilter(rule: Rule, text: str, lowered: str | None) -> tuple[bool, str | None]:
    """Whether ``text`` passes ``rule``'s cheap gates (length, substrings), and ``text.lower()`` once made.

    The lowered text is computed at most once per text and handed back for the next rule.
    """
    if len(text) < rule.min_length:
        return False, lowered
    if not (rule.contains or rule.contains_ci) or any(s in text for s in rule.contains):
        return True, lowered
    if rule.contains_ci:
        if lowered is None:
            lowered = text.lower()
        if any(s in lowered for s in rule.contains_ci):
            return True, lowered
    return False, lowered


class Redactor:
    """Applies compiled rules to text and, recursively, to JSON values. Safe to share across records."""

    def __init__(
        self,
        rules: tuple[Rule, ...],
        secret_names: frozenset[str],
        secret_suffixes: tuple[str, ...],
        secret_marker: str,
    ) -> None:
        self.rules = rules
        self.secret_marker = secret_marker
        self._secret_names = secret_names
        self._secret_suffixes = secret_suffixes
        self._min_length = min((r.min_length for r in rules), default=0)
        self._field_cache: dict[str, bool] = {}

    def is_secret_field(self, key: str) -> bool:
        """True when a JSON key names a secret (case, '-' and '_' ignored)."""
        hit = self._field_cache.get(key)
        if hit is None:
            norm = key.lower().replace("-", "").replace("_", "")
            hit = norm in self._secret_names or norm.endswith(self._secret_suffixes)
            if len(self._field_cache) < 10_000:  # keys repeat across records; bound the cache anyway
                self._field_cache[key] = hit
        return hit

    def active_rules(self, text: str) -> tuple[Rule, ...]:
        """The rules that may match somewhere in ``text``: their prefilter passes, and for rules without
        substrings their regex finds a candidate (validators aside).

        Run once over a whole serialized document, this is the gate that keeps the per-string walk cheap:
        a string inside the document can only match a rule that passes on the document. It holds for the
        orjson text because orjson escapes only quotes, backslashes and control characters, which no
        prefilter substring and no substring-free pattern (digits, dots, colons, hex, spaces) relies on.
        """
        lowered: str | None = None
        out = []
        for rule in self.rules:
            passed, lowered = _prefilter(rule, text, lowered)
            if not passed:
                continue
            if not (rule.contains or rule.contains_ci) and rule.regex.search(text) is None:
                continue
            out.append(rule)
        return tuple(out)

    def may_name_secret_fields(self, text: str) -> bool:
        """False when no key inside the serialized document ``text`` can name a secret field."""
        norm = text.lower().replace("-", "").replace("_", "")
        return any(s in norm for s in self._secret_names) or any(s in norm for s in self._secret_suffixes)

    def redact_text(self, text: str, counts: Counts) -> str:
        """``text`` with every rule applied; adds the number of replacements per rule to ``counts``."""
        if len(text) < self._min_length:
            return text
        return self._apply(self.rules, text, counts)

    def _apply(self, rules: tuple[Rule, ...], text: str, counts: Counts) -> str:
        lowered: str | None = None
        for rule in rules:
            passed, lowered = _prefilter(rule, text, lowered)
            if not passed or rule.regex.search(text) is None:
                continue
            hits = 0

            def replace(m: re.Match[str], rule: Rule = rule) -> str:
                nonlocal hits
                whole = m.group(0)
                if rule.validator is not None:
                    replacement, n = rule.validator(whole, rule.marker)
                    hits += n
                    return replacement
                hits += 1
                if rule.has_value_group and m.start("value") >= 0:
                    base = m.start()
                    return whole[: m.start("value") - base] + rule.marker + whole[m.end("value") - base :]
                return rule.marker

            new_text = rule.regex.sub(replace, text)
            if hits:
                counts[rule.name] = counts.get(rule.name, 0) + hits
                text, lowered = new_text, None
        return text

    def redact_value(self, value: Any, counts: Counts, serialized: str | None = None) -> Any:
        """A redacted copy of a JSON value (dicts, lists, strings; other scalars are kept as they are).

        ``serialized`` is the value's JSON text, or any JSON text containing it (the message body the
        value was parsed from): the gate of ``active_rules`` runs on it once, so the walk only applies
        the rules that can match. When nothing can match, ``value`` itself is returned, uncopied.
        """
        text = json_text(value) if serialized is None else serialized
        rules = self.active_rules(text)
        keys = self.may_name_secret_fields(text)
        if not rules and not keys:
            return value
        # When every active rule has plain substrings, a string holding none of them is skipped by one
        # ``in`` test (or one search) instead of a call per rule: the common case is "@" alone.
        subs: list[str] = []
        for rule in rules:
            if not rule.contains or rule.contains_ci:
                subs = []
                break
            subs.extend(rule.contains)
        one = subs[0] if len(subs) == 1 else None
        many = re.compile("|".join(map(re.escape, subs))) if len(subs) > 1 else None
        return self._walk(value, _Walk(rules, one, many, keys, counts))

    def _walk(self, value: Any, w: _Walk) -> Any:
        # Scalars are handled inline rather than by a recursive call each: the walk visits every value of
        # every record, and a call per value costs more than the tests themselves.
        kind = type(value)
        if kind is dict:
            out: dict[str, Any] = {}
            rules, one, many = w.rules, w.one, w.many
            for key, item in value.items():
                if rules and (one is None or one in key) and (many is None or many.search(key)):
                    key_out = self._apply(rules, key, w.counts)
                else:
                    key_out = key
                if w.keys and item is not None and item != "" and self.is_secret_field(key):
                    if item != self.secret_marker:
                        w.counts[SECRET_FIELD_RULE] = w.counts.get(SECRET_FIELD_RULE, 0) + 1
                    out[key_out] = self.secret_marker
                    continue
                item_kind = type(item)
                if item_kind is str:
                    if rules and (one is None or one in item) and (many is None or many.search(item)):
                        item = self._apply(rules, item, w.counts)
                    out[key_out] = item
                elif item_kind is dict or item_kind is list:
                    out[key_out] = self._walk(item, w)
                else:
                    out[key_out] = item
            return out
        if kind is list:
            return [self._walk(item, w) for item in value]
        if (
            kind is str
            and w.rules
            and (w.one is None or w.one in value)
            and (w.many is None or w.many.search(value))
        ):
            return self._apply(w.rules, value, w.counts)
        return value


@dataclass(frozen=True, slots=True)
class _Walk:
    """What one document's walk applies: the active rules, their substring gate, the secret-key test."""

    rules: tuple[Rule, ...]
    one: str | None
    many: re.Pattern[str] | None
    keys: bool
    counts: Counts


def json_text(value: Any) -> str:
    """JSON text of any JSON value (orjson, or the standard library for integers beyond 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # integers beyond 64 bits: orjson refuses them, the standard library does not
        return json.dumps(value)


def _compile_rule(raw: Any, source: str) -> Rule:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw.get("name"):
        raise RulesError(f"{source}: every rule needs a non-empty string 'name', got {raw!r:.80}")
    name = raw["name"]
    where = f"{source}: rule {name!r}"
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise RulesError(f"{where}: unknown field(s) {sorted(unknown)}")
    label = raw.get("label", name)
    if not isinstance(label, str) or not _LABEL_RE.match(label):
        raise RulesError(f"{where}: 'label' must be lower-case letters, digits or '_', got {label!r}")
    pattern = raw.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise RulesError(f"{where}: 'pattern' must be a non-empty string")
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise RulesError(f"{where}: invalid pattern: {exc}") from None
    prefilter = raw.get("prefilter", {})
    if not isinstance(prefilter, dict) or set(prefilter) - _PREFILTER_KEYS:
        raise RulesError(f"{where}: 'prefilter' may only have {sorted(_PREFILTER_KEYS)}")
    contains = prefilter.get("contains", [])
    contains_ci = prefilter.get("contains_ci", [])
    min_length = prefilter.get("min_length", 0)
    if not all(isinstance(s, str) and s for s in [*contains, *contains_ci]):
        raise RulesError(f"{where}: prefilter substrings must be non-empty strings")
    if any(s != s.lower() for s in contains_ci):
        raise RulesError(f"{where}: 'contains_ci' substrings must be lower-case")
    if not isinstance(min_length, int) or min_length < 0:
        raise RulesError(f"{where}: 'min_length' must be a non-negative integer")
    validator_name = raw.get("validator")
    if validator_name is not None and validator_name not in VALIDATORS:
        raise RulesError(f"{where}: unknown validator {validator_name!r} (known: {sorted(VALIDATORS)})")
    return Rule(
        name=name,
        marker=f"{MARKER_PREFIX}{label}]",
        regex=regex,
        contains=tuple(contains),
        contains_ci=tuple(contains_ci),
        min_length=min_length,
        validator=VALIDATORS[validator_name] if validator_name else None,
        has_value_group="value" in regex.groupindex,
    )


def compile_rules(doc: Mapping[str, Any], *, redact_ip_addresses: bool, source: str = "rules") -> Redactor:
    """A ``Redactor`` from a parsed rules document; ``RulesError`` names the first problem."""
    raw_rules = doc.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise RulesError(f"{source}: 'rules' must be a non-empty list")
    enabled = {"redact_ip_addresses": redact_ip_addresses}
    rules: list[Rule] = []
    seen: set[str] = set()
    for raw in raw_rules:
        rule = _compile_rule(raw, source)
        if rule.name in seen:
            raise RulesError(f"{source}: duplicate rule name {rule.name!r}")
        seen.add(rule.name)
        setting = raw.get("setting")
        if setting is not None and setting not in _SETTINGS:
            raise RulesError(f"{source}: rule {rule.name!r}: unknown setting {setting!r}")
        if setting is None or enabled[setting]:
            rules.append(rule)
    fields = doc.get("secret_fields", {})
    if not isinstance(fields, dict):
        raise RulesError(f"{source}: 'secret_fields' must be an object")
    names, suffixes = fields.get("names", []), fields.get("suffixes", [])
    label = fields.get("label", "credential")
    if not all(isinstance(s, str) and s for s in [*names, *suffixes]):
        raise RulesError(f"{source}: secret_fields names and suffixes must be non-empty strings")
    if not isinstance(label, str) or not _LABEL_RE.match(label):
        raise RulesError(f"{source}: secret_fields 'label' must be lower-case letters, digits or '_'")

    def norm(s: str) -> str:
        return s.lower().replace("-", "").replace("_", "")

    return Redactor(
        tuple(rules),
        frozenset(norm(s) for s in names),
        tuple(norm(s) for s in suffixes),
        f"{MARKER_PREFIX}{label}]",
    )


@functools.cache
def load(path: str = "", redact_ip_addresses: bool = False) -> Redactor:
    """The redactor for a rules file (``""``: the bundled one), compiled on first use and kept."""
    file = Path(path) if path else DEFAULT_RULES_PATH
    try:
        doc = orjson.loads(file.read_bytes())
    except OSError as exc:
        raise RulesError(f"{file}: cannot read redaction rules: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise RulesError(f"{file}: redaction rules are not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RulesError(f"{file}: redaction rules must be a JSON object")
    return compile_rules(doc, redact_ip_addresses=redact_ip_addresses, source=str(file))
