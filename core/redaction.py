"""Redaction of secrets and personal data from log text and JSON values, with counts per rule.

The rules are data (``core/redaction_rules.json``, or the file named by ``REDACTION_RULES_PATH``),
compiled once per process. Every string goes through the rules in file order; a rule only runs its regex
when a cheap prefilter passes (``'@' in s`` before the e-mail regex, the shape ``0000 0000 0000 0000``
before the card regex...), because most strings in a webhook are short names, URLs and dates that match
nothing. A log line meets all prefilters in one pass (``_TextGate``); a JSON document is gated once as a
whole (``active_rules``). Validators check what a pattern found: card issuers and Luhn here, phone
numbers with ``phonenumbers``, IBANs and US SSNs with ``python-stdnum`` (imported on first use).

A JSON key that names a secret (``password``, ``api_key``, ``Authorization``...) has its whole value
replaced, whatever its type (except ``true``/``false``: a flag such as ``"mobile": true`` holds no
secret). Keys are redacted like any other string (a map keyed by e-mail address would otherwise leak);
two keys that redact to the same text keep the last value.

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

DEFAULT_RULES_PATH = Path(__file__).parent / "redaction_rules.json"
MARKER_PREFIX = "[REDACTED:"
SECRET_FIELD_RULE = "credential_field"  # noqa: S105 - a rule name, not a secret

Counts = dict[str, int]

_LABEL_RE = re.compile(r"^[a-z0-9_]+$")
_SETTINGS = frozenset({"redact_ip_addresses"})
_PREFILTER_KEYS = frozenset({"contains", "contains_ci", "shape", "min_length"})
# The shape of a text: every ASCII digit becomes "0" and every ASCII capital "A", the rest is kept, so
# "4111 1111" and "DE89" hold the shapes "0000 0000" and "AA00". A substring test on the shape is the
# cheap gate of rules that have no literal text of their own (cards, SSNs, phones, IBANs).
# Computed on the UTF-8 bytes: bytes.translate is a table lookup per byte, and UTF-8 never encodes a
# non-ASCII character with ASCII bytes, so ASCII shape substrings are found exactly as in the text.
_SHAPE = bytes.maketrans(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"0" * 10 + b"A" * 26)


def _shape(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass").translate(_SHAPE)


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


_JSON_ESCAPES = (("\\n", "\n"), ("\\t", "\t"), ("\\r", "\r"), ('\\"', '"'), ("\\/", "/"))
# A JSON number of 13 to 19 digits, the only numbers ``card_ok`` may accept.
_MAY_HOLD_CARD_NUMBER = re.compile(r"[:\[,][ ]*[2-6][0-9]{12,18}[ ]*[,}\]]").search


def _unescape_json(text: str) -> str:
    """``text`` with JSON's common escapes undone where they occur (a gate only: not exact JSON decoding)."""
    if "\\" not in text:
        return text
    for escaped, plain in _JSON_ESCAPES:
        if escaped in text:
            text = text.replace(escaped, plain)
    return text


def _check(ok: Callable[[str], bool]) -> Callable[[str, str], tuple[str, int]]:
    def validate(candidate: str, marker: str) -> tuple[str, int]:
        return (marker, 1) if ok(candidate) else (candidate, 0)

    return validate


# Issuer prefixes (inclusive ranges of leading digits) and the lengths each issues, from the card
# networks' published ranges as collected by Wikipedia's "Payment card number" article. A run of digits
# that no network issues is not a card, whatever its Luhn digit says.
_CARD_ISSUERS: tuple[tuple[int, int, frozenset[int]], ...] = (
    (4, 4, frozenset({13, 16, 19})),  # Visa
    (51, 55, frozenset({16})),  # Mastercard
    (2221, 2720, frozenset({16})),  # Mastercard 2-series
    (34, 34, frozenset({15})),  # American Express
    (37, 37, frozenset({15})),
    (6011, 6011, frozenset(range(16, 20))),  # Discover
    (644, 649, frozenset(range(16, 20))),
    (65, 65, frozenset(range(16, 20))),
    (3528, 3589, frozenset(range(16, 20))),  # JCB
    (300, 305, frozenset(range(14, 20))),  # Diners Club
    (36, 36, frozenset(range(14, 20))),
    (38, 39, frozenset(range(16, 20))),
    (62, 62, frozenset(range(16, 20))),  # UnionPay
    (2200, 2204, frozenset(range(16, 20))),  # Mir
    (5018, 5018, frozenset(range(13, 20))),  # Maestro
    (5020, 5020, frozenset(range(13, 20))),
    (5038, 5038, frozenset(range(13, 20))),
    (5893, 5893, frozenset(range(13, 20))),
    (6304, 6304, frozenset(range(13, 20))),
    (6759, 6759, frozenset(range(13, 20))),
    (6761, 6763, frozenset(range(13, 20))),
)


_CARD_MIN, _CARD_END = 10**12, 10**19  # JSON integers of 13 to 19 digits


def card_ok(candidate: str) -> bool:
    """True when the digits of ``candidate`` (separators ignored) have a known issuer's prefix and
    length and, last, pass the Luhn check."""
    digits = "".join(c for c in candidate if "0" <= c <= "9")
    n = len(digits)
    for low, high, lengths in _CARD_ISSUERS:
        width = len(str(low))
        if n in lengths and low <= int(digits[:width]) <= high:
            return luhn_ok(digits)
    return False


def _card_groups(candidate: str, marker: str) -> tuple[str, int]:
    """Replace a card; a 4-4-4-4 card followed by a 3-digit group arrives as one 19-digit candidate, so
    when the whole fails, the candidate without its last group is tried."""
    if card_ok(candidate):
        return marker, 1
    cut = max(candidate.rfind(" "), candidate.rfind("-"), candidate.rfind("."))
    if cut > 0 and card_ok(candidate[:cut]):
        return marker + candidate[cut:], 1
    return candidate, 0


def _ssn_ok(candidate: str) -> bool:
    from stdnum.us import ssn  # python-stdnum: area not 000/666/9xx, group not 00, serial not 0000

    return bool(ssn.is_valid(candidate.replace(" ", "-")))


def _iban_prefix(candidate: str, marker: str) -> tuple[str, int]:
    """Replace each valid IBAN (country format + mod 97) in a run of groups, longest first.

    The pattern may take a word of four capitals or digits before or after an IBAN as one more group
    ("AA00 DE89 3704 …", "… 0130 00 ABCD"): an IBAN is tried from the run's start, then from each later
    group that starts with two capitals and two digits, and the rest of the run is searched again.
    """
    from stdnum import iban

    starts = [0, *(i + 1 for i in range(len(candidate) - 1) if candidate[i] == " ")]
    for start in starts:
        head = candidate[start : start + 4]
        if not (head[:2].isalpha() and head[:2].isupper() and head[2:].isdigit()):
            continue
        rest = candidate[start:]
        for end in [len(rest), *(i for i in range(len(rest) - 1, 14, -1) if rest[i] == " ")]:
            if iban.is_valid(rest[:end]):
                tail, hits = _iban_prefix(rest[end:], marker)
                return candidate[:start] + marker + tail, hits + 1
    return candidate, 0


def _phone_numbers(candidate: str, marker: str) -> tuple[str, int]:
    """Replace what ``phonenumbers`` finds in a candidate at leniency VALID (a number that exists in
    its region's numbering plan); national formats are read as US numbers.

    The pattern may take a following number as one more group ("+44 7400 123000 00"): when nothing is
    found, the candidate is cut back a group at a time.
    """
    from phonenumbers import Leniency, PhoneNumberMatcher

    ends = [len(candidate), *(i for i in range(len(candidate) - 1, 6, -1) if candidate[i] in " .-")][:4]
    for end in ends:
        text = candidate[:end]
        out, last, hits = [], 0, 0
        for match in PhoneNumberMatcher(text, "US", leniency=Leniency.VALID):
            out.append(text[last : match.start])
            out.append(marker)
            last, hits = match.end, hits + 1
        if hits:
            out.append(candidate[last:])
            return "".join(out), hits
    return candidate, 0


# A validator gets a match (or its ``value`` group) and the rule's marker and returns
# (replacement, replacements made).
_CARD_VALIDATOR = _card_groups
VALIDATORS: dict[str, Callable[[str, str], tuple[str, int]]] = {
    "luhn": _card_windows,
    "card": _CARD_VALIDATOR,
    "ssn": _check(_ssn_ok),
    "iban": _iban_prefix,
    "phone": _phone_numbers,
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
    shape: tuple[bytes, ...]
    min_length: int
    validator: Callable[[str, str], tuple[str, int]] | None
    has_value_group: bool
    # A pattern that starts with literal text ("://", "glpat-", an escaped "+"): the regex engine scans for it as
    # fast as a substring test, so a document's gate can afford the whole pattern.
    literal_start: bool = False


def _prefilter(rule: Rule, text: str, views: list[Any]) -> bool:
    """Whether ``text`` passes ``rule``'s cheap gates: its length, then any of its substrings (of the
    text, of the lower-cased text, or of its shape); a rule without substrings passes on length alone.

    ``views`` holds the lower-cased text, the shape, each computed at most once per text, and which
    case-insensitive substrings the text holds.
    """
    if len(text) < rule.min_length:
        return False
    if not (rule.contains or rule.contains_ci or rule.shape):
        return True
    for sub in rule.contains:
        if sub in text:
            return True
    if rule.contains_ci:
        lowered = views[0]
        if lowered is None:
            lowered = views[0] = text.lower()
        seen = views[2]  # rules share substrings ("pass", "secret", "token"): each is searched once
        for sub in rule.contains_ci:
            hit = seen.get(sub)
            if hit is None:
                hit = seen[sub] = sub in lowered
            if hit:
                return True
    if rule.shape:
        shaped = views[1]
        if shaped is None:
            shaped = views[1] = _shape(text)
        for shape in rule.shape:
            if shape in shaped:
                return True
    return False


def _overlaps(first: str, second: str) -> bool:
    """True when a proper suffix of ``first`` is a proper prefix of ``second``."""
    return any(first.endswith(second[:n]) for n in range(1, min(len(first), len(second))))


class _TextGate:
    """All the substring prefilters of a rule set in one pass over a text: which rules may match.

    Testing each rule's substrings in turn costs a call and several searches per rule on every log line.
    Here one regex finds every literal substring (case-sensitive ones included, as a superset) in the
    lower-cased text, the shape substrings are tested once each, and the rules follow from what was
    found, in file order.
    """

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        literals: dict[str, set[int]] = {}
        self._shapes: dict[bytes, set[int]] = {}
        self._bare: set[int] = set()
        for i, rule in enumerate(rules):
            for sub in (*rule.contains, *rule.contains_ci):
                literals.setdefault(sub.lower(), set()).add(i)
            for shape in rule.shape:
                self._shapes.setdefault(shape, set()).add(i)
            if not (rule.contains or rule.contains_ci or rule.shape):
                self._bare.add(i)
        # A found literal stands for the literals it contains, and for those that may start inside it
        # (a suffix of it is a prefix of them): one non-overlapping scan then misses no rule.
        self._literals = {
            lit: {i for other, idx in literals.items() if other in lit or _overlaps(lit, other) for i in idx}
            for lit in literals
        }
        ordered = sorted(literals, key=len, reverse=True)
        self._find = re.compile("|".join(map(re.escape, ordered))).findall if ordered else None
        self._rules = rules
        self._cache: dict[frozenset[int], tuple[Rule, ...]] = {}

    def rules_for(self, text: str) -> tuple[Rule, ...]:
        """The rules whose prefilter substrings ``text`` holds, and those without any, in file order."""
        chosen = set(self._bare)
        if self._find is not None:
            for lit in set(self._find(text.lower())):
                chosen |= self._literals[lit]
        if self._shapes:
            shaped = _shape(text)
            for sub, idx in self._shapes.items():
                if sub in shaped:
                    chosen |= idx
        key = frozenset(chosen)
        rules = self._cache.get(key)
        if rules is None:
            rules = tuple(self._rules[i] for i in sorted(chosen))
            if len(self._cache) < 1024:
                self._cache[key] = rules
        return rules


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
        # Shortest first: a large document usually holds one of them somewhere, and ``any`` stops there.
        self._field_substrings = tuple(sorted({*secret_names, *secret_suffixes}, key=len))
        self._min_length = min((r.min_length for r in rules), default=0)
        self._field_cache: dict[str, bool] = {}
        # Cards sent as JSON numbers are checked whether or not the card rule passed the text gate.
        self._card_rule = next((r for r in rules if r.validator is _CARD_VALIDATOR), None)
        self._text_gate = _TextGate(rules)

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
        """The rules that may match somewhere in ``text``: their prefilter passes and, for rules without
        substrings, with a validator or whose pattern starts with literal text, their regex finds a
        match (that passes the validator).

        Run once over a whole serialized document, this is the gate that keeps the per-string walk cheap:
        a string inside the document can only match a rule that passes on the document. It holds for the
        orjson text because orjson escapes only quotes, backslashes and control characters: the common
        escapes are undone for the regex gate (``\\n`` becomes a line break...), and no pattern takes a
        quote or a backslash inside a validated match, so a validator sees the same candidate either way.
        """
        views: list[Any] = [None, None, {}]
        gate = _unescape_json(text)
        out = []
        for rule in self.rules:
            if rule.literal_start and rule.validator is None:
                # The pattern's own scan for its literal start is the substring test.
                if len(text) >= rule.min_length and rule.regex.search(gate) is not None:
                    out.append(rule)
                continue
            if not _prefilter(rule, text, views):
                continue
            if rule.validator is None:
                searched = rule.literal_start or not (rule.contains or rule.contains_ci or rule.shape)
                if searched and rule.regex.search(gate) is None:
                    continue
            elif not any(rule.validator(m.group(0), rule.marker)[1] for m in rule.regex.finditer(gate)):
                continue
            out.append(rule)
        return tuple(out)

    def may_name_secret_fields(self, text: str) -> bool:
        """False when no key inside the serialized document ``text`` can name a secret field."""
        norm = text.lower().replace("-", "").replace("_", "")
        return any(s in norm for s in self._field_substrings)

    def redact_text(self, text: str, counts: Counts) -> str:
        """``text`` with every rule applied; adds the number of replacements per rule to ``counts``."""
        if len(text) < self._min_length:
            return text
        return self._apply(self._text_gate.rules_for(text), text, counts, gated=True)

    def _apply(self, rules: tuple[Rule, ...], text: str, counts: Counts, gated: bool = False) -> str:
        """``text`` with ``rules`` applied; ``gated``: their substring prefilters already passed on it."""
        views: list[Any] = [None, None, {}]
        for rule in rules:
            if gated:
                if len(text) < rule.min_length:
                    continue
            elif not _prefilter(rule, text, views):
                continue
            if rule.regex.search(text) is None:
                continue
            hits = 0

            def replace(m: re.Match[str], rule: Rule = rule) -> str:
                nonlocal hits
                whole = m.group(0)
                if rule.has_value_group and m.start("value") >= 0:
                    base, start, end = m.start(), m.start("value"), m.end("value")
                    replacement, n = rule.marker, 1
                    if rule.validator is not None:
                        replacement, n = rule.validator(m.group("value"), rule.marker)
                    hits += n
                    return whole[: start - base] + replacement + whole[end - base :]
                if rule.validator is not None:
                    replacement, n = rule.validator(whole, rule.marker)
                    hits += n
                    return replacement
                hits += 1
                return rule.marker

            new_text = rule.regex.sub(replace, text)
            if hits:
                counts[rule.name] = counts.get(rule.name, 0) + hits
                text, views = new_text, [None, None, {}]
        return text

    def redact_value(self, value: Any, counts: Counts, serialized: str | None = None) -> Any:
        """A redacted copy of a JSON value (dicts, lists, strings; integers that are card numbers become
        the card marker; other scalars are kept as they are).

        ``serialized`` is the value's JSON text, or any JSON text containing it (the message body the
        value was parsed from): the gate of ``active_rules`` runs on it once, so the walk only applies
        the rules that can match. When nothing can match, ``value`` itself is returned, uncopied.
        """
        text = json_text(value) if serialized is None else serialized
        rules = self.active_rules(text)
        # With rules to apply the walk happens anyway, and a cached test per key is cheaper than
        # searching a large document for every secret name.
        keys = bool(rules) or self.may_name_secret_fields(text)
        if not rules and not keys and (self._card_rule is None or not _MAY_HOLD_CARD_NUMBER(text)):
            return value
        # When every active rule has plain substrings, a string holding none of them is skipped by one
        # ``in`` test (or one search) instead of a call per rule: the common case is "@" alone.
        subs: list[str] = []
        for rule in rules:
            if not rule.contains or rule.contains_ci or rule.shape:
                subs = []
                break
            subs.extend(rule.contains)
        one = subs[0] if len(subs) == 1 else None
        many = re.compile("|".join(map(re.escape, subs))) if len(subs) > 1 else None
        return self._walk(value, _Walk(rules, one, many, keys, counts, self._card_rule))

    def _walk(self, value: Any, w: _Walk) -> Any:
        # Scalars are handled inline rather than by a recursive call each: the walk visits every value of
        # every record, and a call per value costs more than the tests themselves.
        kind = type(value)
        if kind is dict:
            out: dict[str, Any] = {}
            rules, one, many, cache = w.rules, w.one, w.many, self._field_cache
            for key, item in value.items():
                if rules and (one is None or one in key) and (many is None or many.search(key)):
                    key_out = self._apply(rules, key, w.counts)
                else:
                    key_out = key
                if (
                    w.keys
                    and item is not None
                    and item != ""
                    and item is not True
                    and item is not False
                    and (cache.get(key) if key in cache else self.is_secret_field(key))
                ):
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
                elif item_kind is int and w.card is not None and _CARD_MIN <= item < _CARD_END:
                    out[key_out] = self._card_number(item, w)
                else:
                    out[key_out] = item
            return out
        if kind is list:
            return [self._walk(item, w) for item in value]
        if kind is int and w.card is not None and _CARD_MIN <= value < _CARD_END:
            return self._card_number(value, w)
        if (
            kind is str
            and w.rules
            and (w.one is None or w.one in value)
            and (w.many is None or w.many.search(value))
        ):
            return self._apply(w.rules, value, w.counts)
        return value

    @staticmethod
    def _card_number(value: int, w: _Walk) -> Any:
        """A card sent as a JSON number becomes its rule's marker (a string); other integers stay."""
        if w.card is None or not card_ok(str(value)):
            return value
        w.counts[w.card.name] = w.counts.get(w.card.name, 0) + 1
        return w.card.marker


@dataclass(frozen=True, slots=True)
class _Walk:
    """What one document's walk applies: the active rules, their substring gate, the secret-key test."""

    rules: tuple[Rule, ...]
    one: str | None
    many: re.Pattern[str] | None
    keys: bool
    counts: Counts
    card: Rule | None = None


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
    shape = prefilter.get("shape", [])
    min_length = prefilter.get("min_length", 0)
    if not all(isinstance(s, str) and s for s in [*contains, *contains_ci, *shape]):
        raise RulesError(f"{where}: prefilter substrings must be non-empty strings")
    if not all(s.isascii() for s in shape):
        raise RulesError(f"{where}: 'shape' substrings must be ASCII")
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
        shape=tuple(s.encode() for s in shape),
        min_length=min_length,
        validator=VALIDATORS[validator_name] if validator_name else None,
        has_value_group="value" in regex.groupindex,
        literal_start=re.match(r"[A-Za-z0-9:/_-]{2}|\\[+.]", pattern) is not None,
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
