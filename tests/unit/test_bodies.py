"""Every body form and every malformed body gets a defined answer (docs/architecture.md §3)."""

from __future__ import annotations

import base64
import gzip
import zlib

import pytest

from ingest.bodies import Limits, decode_body, decompress, parse_body, parse_media_type
from ingest.normalize import depth_exceeds
from ingest.problems import Problem

LIMITS = Limits(
    max_body_bytes=1024 * 1024,
    max_decompressed_bytes=10 * 1024 * 1024,
    max_records=1000,
    max_record_bytes=256 * 1024,
    max_depth=64,
)


def nested(depth: int) -> dict[str, object]:
    doc: dict[str, object] = {"leaf": True}
    for _ in range(depth - 1):
        doc = {"n": doc}
    return doc


def problem_of(fn, *args) -> Problem:  # type: ignore[no-untyped-def]
    with pytest.raises(Problem) as info:
        fn(*args)
    return info.value


# --- decoding -----------------------------------------------------------------------------------


def test_base64_body_is_decoded() -> None:
    assert decode_body(base64.b64encode(b'{"a":1}').decode(), True, LIMITS) == b'{"a":1}'


def test_invalid_base64_is_400() -> None:
    assert problem_of(decode_body, "not base64!!", True, LIMITS).code == "invalid-base64"


def test_body_over_the_compressed_cap_is_413() -> None:
    small = Limits(100, 1000, 10, 1000, 64)
    assert problem_of(decode_body, "x" * 101, False, small).status == 413
    assert (
        problem_of(decode_body, base64.b64encode(b"x" * 101).decode(), True, small).code == "body-too-large"
    )


def test_missing_body_is_empty_bytes() -> None:
    assert decode_body(None, False, LIMITS) == b""


# --- gzip ---------------------------------------------------------------------------------------


def test_gzip_is_inflated() -> None:
    assert decompress(gzip.compress(b"hello\n"), "gzip", LIMITS) == b"hello\n"


def test_multi_member_gzip_is_inflated_whole() -> None:
    assert decompress(gzip.compress(b"a\n") + gzip.compress(b"b\n"), "gzip", LIMITS) == b"a\nb\n"


def test_decompression_bomb_is_413_without_inflating_it_all() -> None:
    # GIVEN 50 MiB of zeros compressed to ~50 KiB, and a 1 MiB decompressed cap
    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024), compresslevel=9)
    limits = Limits(1024 * 1024, 1024 * 1024, 1000, 256 * 1024, 64)
    # WHEN it is decompressed THEN it is refused as too large
    problem = problem_of(decompress, bomb, "gzip", limits)
    assert (problem.status, problem.code) == (413, "decompressed-too-large")


def test_truncated_or_corrupt_gzip_is_400() -> None:
    data = gzip.compress(b"hello world" * 100)
    assert problem_of(decompress, data[: len(data) // 2], "gzip", LIMITS).code == "invalid-gzip"
    assert problem_of(decompress, b"\x1f\x8b\x08\x00garbage", "gzip", LIMITS).code == "invalid-gzip"
    assert problem_of(decompress, b"plain text", "gzip", LIMITS).code == "invalid-gzip"


def test_unknown_content_encoding_is_415() -> None:
    problem = problem_of(decompress, b"x", "br", LIMITS)
    assert (problem.status, problem.code) == (415, "unsupported-encoding")
    assert decompress(b"x", "identity", LIMITS) == b"x"


def test_raw_deflate_is_not_gzip() -> None:
    assert problem_of(decompress, zlib.compress(b"x"), "gzip", LIMITS).code == "invalid-gzip"


# --- media types --------------------------------------------------------------------------------


def test_media_type_parameters_are_parsed() -> None:
    assert parse_media_type('Application/JSON; charset="UTF-8"') == ("application/json", {"charset": "UTF-8"})
    assert parse_media_type(None) == ("", {})


@pytest.mark.parametrize(
    "content_type", [None, "application/x-www-form-urlencoded", "text/html", "text/plain"]
)
def test_events_refuse_other_media_types_with_415(content_type: str | None) -> None:
    problem = problem_of(parse_body, b'{"a":1}', content_type, "event", LIMITS)
    assert (problem.status, problem.code) == (415, "unsupported-media-type")


def test_json_in_another_charset_is_415() -> None:
    assert problem_of(parse_body, b"{}", "application/json; charset=latin-1", "event", LIMITS).status == 415


def test_vendor_json_types_are_json() -> None:
    assert parse_body(b'{"a":1}', "application/cloudevents+json", "event", LIMITS).items == [(0, {"a": 1})]


# --- JSON and NDJSON ----------------------------------------------------------------------------


def test_object_array_and_ndjson_give_items_in_order() -> None:
    assert parse_body(b'{"a":1}', "application/json", "event", LIMITS).items == [(0, {"a": 1})]
    assert parse_body(b'[{"a":1},{"a":2}]', "application/json", "event", LIMITS).items == [
        (0, {"a": 1}),
        (1, {"a": 2}),
    ]
    ndjson = b'{"a":1}\r\n\n   \n{"a":2}\n'
    assert parse_body(ndjson, "application/x-ndjson", "event", LIMITS).items == [(0, {"a": 1}), (1, {"a": 2})]


@pytest.mark.parametrize("body", [b" ", b"\n\n", b""])
def test_empty_body_is_400(body: bytes) -> None:
    assert problem_of(parse_body, body, "application/json", "event", LIMITS).code == "empty-body"


@pytest.mark.parametrize(
    "body", [b"{", b'{"a":NaN}', b'{"a":Infinity}', b'{"a":-Infinity}', b'{"a":1e400}', b"{'a':1}", b"[1,]"]
)
def test_malformed_json_and_non_finite_numbers_are_400(body: bytes) -> None:
    problem = problem_of(parse_body, body, "application/json", "event", LIMITS)
    assert (problem.status, problem.code) == (400, "invalid-json")


def test_invalid_utf8_json_is_400() -> None:
    problem = problem_of(parse_body, b'{"a":"\xff\xfe"}', "application/json", "event", LIMITS)
    assert (problem.status, problem.code) == (400, "invalid-utf8")


def test_lone_surrogate_escape_is_400() -> None:
    assert problem_of(parse_body, b'{"a":"\\ud800"}', "application/json", "event", LIMITS).status == 400


def test_bad_ndjson_line_refuses_only_that_item() -> None:
    parsed = parse_body(b'{"a":1}\n{oops\n{"a":3}\n', "application/x-ndjson", "event", LIMITS)
    assert parsed.items == [(0, {"a": 1}), (2, {"a": 3})]
    assert [(e.index, e.code) for e in parsed.errors] == [(1, "invalid-json")]


def test_duplicate_keys_keep_the_last_value() -> None:
    # RFC 8259 leaves duplicates undefined; we document "last one wins", as JavaScript and Python do.
    assert parse_body(b'{"a":1,"a":2}', "application/json", "event", LIMITS).items == [(0, {"a": 2})]


def test_huge_numbers_have_a_defined_reading() -> None:
    # Integers within 64 bits stay exact; beyond, they are IEEE-754 doubles (RFC 8259 §6 interoperability).
    items = parse_body(
        b'{"u":18446744073709551615,"big":123456789012345678901234567890}',
        "application/json",
        "event",
        LIMITS,
    ).items
    assert items[0][1]["u"] == 18446744073709551615
    assert items[0][1]["big"] == pytest.approx(1.2345678901234568e29)


def test_nesting_beyond_the_parser_limit_is_400() -> None:
    assert (
        problem_of(parse_body, b"[" * 5000 + b"]" * 5000, "application/json", "event", LIMITS).status == 400
    )


def test_depth_counts_arrays_and_objects() -> None:
    assert not depth_exceeds([[[1]]], 3)
    assert depth_exceeds([[[[1]]]], 3)
    assert not depth_exceeds("scalar", 1)


def test_too_many_records_is_413() -> None:
    small = Limits(1024 * 1024, 1024 * 1024, 3, 1024, 64)
    assert (
        problem_of(parse_body, b"[{},{},{},{}]", "application/json", "event", small).code
        == "too-many-records"
    )
    assert problem_of(parse_body, b"a\nb\nc\nd\n", "text/plain", "log", small).code == "too-many-records"
    assert problem_of(parse_body, b"{}\n{}\n{}\n{}\n", "application/x-ndjson", "event", small).status == 413


# --- text/plain ---------------------------------------------------------------------------------


def test_text_lines_skip_blank_lines_and_keep_indentation() -> None:
    parsed = parse_body(b"first\r\n\n  \n  indented\nlast", "text/plain", "log", LIMITS)
    assert parsed.items == [(0, "first"), (1, "  indented"), (2, "last")]


def test_text_keeps_odd_separators_inside_a_line() -> None:
    parsed = parse_body("a\x0bb\u2028c\x1cd\n".encode(), "text/plain", "log", LIMITS)
    assert parsed.items == [(0, "a\x0bb\u2028c\x1cd")]


def test_invalid_utf8_in_text_becomes_replacement_characters() -> None:
    assert parse_body(b"caf\xe9 ok\n", "text/plain", "log", LIMITS).items == [(0, "caf\ufffd ok")]


def test_declared_charset_is_honoured_and_unknown_charset_is_415() -> None:
    assert parse_body(b"caf\xe9\n", "text/plain; charset=latin-1", "log", LIMITS).items == [(0, "café")]
    assert problem_of(parse_body, b"x", "text/plain; charset=klingon", "log", LIMITS).status == 415


@pytest.mark.parametrize(
    "charset",
    [
        "rot13",
        "base64",
        "hex",
        "zlib",
        "bz2",
        "quopri",
        "uu",
        "idna",
        "punycode",
        "undefined",
        "unicode_escape",
        "raw_unicode_escape",
        "charmap",
        "utf-8\x00",
    ],
)
def test_charsets_that_are_not_text_encodings_are_415(charset: str) -> None:
    # Python codecs that turn bytes into bytes, text into text, or escapes into characters are no
    # character set: decoding with them raised (500) or mangled lines (a 422 `too-deep`).
    for body in (b"caf\xe9 \\u00e9\n", b"plain line\n", b"\\" * 200 + b"[" * 200 + b"\n"):
        problem = problem_of(parse_body, body, f"text/plain; charset={charset}", "log", LIMITS)
        assert (problem.status, problem.code) == (415, "unsupported-media-type")
        assert repr(charset) in problem.detail


@pytest.mark.parametrize(
    "charset", ["utf-8", "UTF8", "latin-1", "iso-8859-15", "windows-1252", "utf-16", "gb18030"]
)
def test_real_text_charsets_are_still_decoded(charset: str) -> None:
    assert parse_body("café\n".encode(charset), f"text/plain; charset={charset}", "log", LIMITS).items == [
        (0, "café")
    ]
