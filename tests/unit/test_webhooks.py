"""Webhook signature verification (ingest/webhooks.py): known vectors, edges, rotation, malformed input."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.webhooks import (
    REASONS,
    SignatureError,
    Verified,
    WebhookConfigError,
    WebhookSource,
    configured_sources,
    load_config,
    verify,
    verify_delivery,
)

NOW = 1_795_349_730  # a fixed server clock; no test depends on the real time
GITHUB_SECRET = "gh-test-secret-not-real"
GITHUB_OLD_SECRET = "gh-old-secret-not-real"
STRIPE_SECRET = "whsec_stripe_test_secret_not_real"
STRIPE_OLD_SECRET = "whsec_stripe_old_secret_not_real"
# Standard Webhooks secrets are base64 after the prefix (these decode to 24 random-looking bytes).
STANDARD_SECRET = "whsec_" + base64.b64encode(b"standard-test-key-24byte").decode()
STANDARD_OLD_SECRET = "whsec_" + base64.b64encode(b"standard-old-key-24bytes").decode()
ALL_SECRETS = (GITHUB_SECRET, GITHUB_OLD_SECRET, STRIPE_SECRET, STRIPE_OLD_SECRET, STANDARD_SECRET)


def _config(**sources: dict[str, object]) -> dict[str, WebhookSource]:
    return load_config(orjson.dumps(sources).decode())


def _source(scheme: str, *secrets: str, tolerance: int = 300) -> WebhookSource:
    return _config(
        src={"scheme": scheme, "tenant_id": "acme", "secrets": list(secrets), "tolerance_seconds": tolerance}
    )["src"]


def github_headers(body: bytes, secret: str = GITHUB_SECRET, **extra: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"x-hub-signature-256": f"sha256={digest}", **extra}


def stripe_signature(body: bytes, t: int, secret: str = STRIPE_SECRET) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def stripe_headers(body: bytes, t: int, secret: str = STRIPE_SECRET) -> dict[str, str]:
    return {"stripe-signature": f"t={t},v1={stripe_signature(body, t, secret)}"}


def standard_signature(body: bytes, msg_id: str, t: int, secret: str = STANDARD_SECRET) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{t}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def standard_headers(
    body: bytes, t: int, msg_id: str = "msg_1", secret: str = STANDARD_SECRET
) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(t),
        "webhook-signature": standard_signature(body, msg_id, t, secret),
    }


def assert_fails(
    code: str, source: WebhookSource, headers: dict[str, str], body: bytes, now: float = NOW
) -> None:
    with pytest.raises(SignatureError) as info:
        verify(source, headers, body, now)
    assert info.value.reason == code, info.value.detail
    assert all(secret not in str(info.value) for secret in ALL_SECRETS)


def flip_one_byte(body: bytes, index: int) -> bytes:
    return body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]


# --- GitHub ------------------------------------------------------------------------------------------------


def _github_corpus(corpus: Path) -> list[Path]:
    files = sorted((corpus / "webhooks" / "github").glob("*.json"))
    assert files, "the shared corpus has no GitHub webhook bodies"
    return files


def test_github_signature_over_every_corpus_body_verifies(corpus: Path) -> None:
    # GIVEN real GitHub bodies, each signed as GitHub signs: HMAC-SHA256 of the raw bytes
    source = _source("github", GITHUB_SECRET)
    for path in _github_corpus(corpus):
        body = path.read_bytes()
        event = path.name.split(".")[0]
        headers = github_headers(body, **{"x-github-event": event, "x-github-delivery": f"d-{path.stem}"})
        # WHEN verified THEN the tenant, the claimed delivery id and event type, and the body's digest as the
        # signed identity come back
        result = verify(source, headers, body, NOW)
        identity = f"sha256:{hashlib.sha256(body).hexdigest()}"
        assert result == Verified("src", "acme", f"d-{path.stem}", event, None, identity), path.name


def test_github_one_byte_change_in_a_corpus_body_fails(corpus: Path) -> None:
    source = _source("github", GITHUB_SECRET)
    for path in _github_corpus(corpus)[:10]:
        body = path.read_bytes()
        headers = github_headers(body)
        for index in (0, len(body) // 2, len(body) - 1):
            assert_fails("signature_mismatch", source, headers, flip_one_byte(body, index))


def test_github_reserialised_json_body_fails(corpus: Path) -> None:
    # The raw-bytes rule in practice: parsing and re-dumping the same JSON changes the bytes.
    source = _source("github", GITHUB_SECRET)
    body = _github_corpus(corpus)[0].read_bytes()
    reserialised = orjson.dumps(orjson.loads(body))
    assert reserialised != body
    assert_fails("signature_mismatch", source, github_headers(body), reserialised)


def test_github_rotation_accepts_either_active_secret_and_rejects_a_retired_one() -> None:
    body = b'{"zen": "Design for failure."}'
    rotating = _source("github", GITHUB_OLD_SECRET, GITHUB_SECRET)
    assert verify(rotating, github_headers(body, GITHUB_OLD_SECRET), body, NOW).tenant_id == "acme"
    assert verify(rotating, github_headers(body, GITHUB_SECRET), body, NOW).tenant_id == "acme"
    # after rotation only the new secret is configured: deliveries signed with the old one fail
    rotated = _source("github", GITHUB_SECRET)
    assert_fails("signature_mismatch", rotated, github_headers(body, GITHUB_OLD_SECRET), body)


def test_github_uppercase_hex_digest_is_accepted() -> None:
    body = b"{}"
    header = github_headers(body)["x-hub-signature-256"]
    upper = {"x-hub-signature-256": "sha256=" + header.removeprefix("sha256=").upper()}
    assert verify(_source("github", GITHUB_SECRET), upper, body, NOW).source == "src"


def test_github_without_delivery_headers_gives_none() -> None:
    body = b"{}"
    result = verify(_source("github", GITHUB_SECRET), github_headers(body), body, NOW)
    assert (result.delivery_id, result.event_type) == (None, None)


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "signature_missing"),
        ({"x-hub-signature": "sha1=" + "0" * 40}, "signature_missing"),  # the legacy SHA-1 header alone
        ({"x-hub-signature-256": ""}, "malformed_signature"),
        ({"x-hub-signature-256": "sha1=" + "0" * 64}, "malformed_signature"),
        ({"x-hub-signature-256": "0" * 64}, "malformed_signature"),
        ({"x-hub-signature-256": "sha256=" + "0" * 63}, "malformed_signature"),
        ({"x-hub-signature-256": "sha256=" + "g" * 64}, "malformed_signature"),
        (
            {"x-hub-signature-256": "sha256=" + "00 " * 21 + "0"},
            "malformed_signature",
        ),  # fromhex would take it
        ({"x-hub-signature-256": "sha256=" + "0" * 64}, "signature_mismatch"),
    ],
)
def test_github_malformed_headers_give_their_code(headers: dict[str, str], code: str) -> None:
    assert_fails(code, _source("github", GITHUB_SECRET), headers, b"{}")


# --- Stripe ------------------------------------------------------------------------------------------------

STRIPE_BODY = b'{"id": "evt_1", "object": "event", "type": "payment_intent.succeeded"}'


def test_stripe_valid_signature_verifies_and_leaves_delivery_id_to_the_body() -> None:
    result = verify(_source("stripe", STRIPE_SECRET), stripe_headers(STRIPE_BODY, NOW), STRIPE_BODY, NOW)
    identity = f"sha256:{hashlib.sha256(STRIPE_BODY).hexdigest()}"
    assert result == Verified("src", "acme", None, None, NOW, identity=identity, id_field="id")


@pytest.mark.parametrize(
    ("age", "ok"),
    [(0, True), (300, True), (301, False), (-300, True), (-301, False)],
    ids=["now", "exactly-at-tolerance", "one-second-past", "future-at-tolerance", "future-past"],
)
def test_stripe_timestamp_tolerance_edges(age: int, ok: bool) -> None:
    # GIVEN a correctly signed delivery whose timestamp is `age` seconds before the server clock
    source = _source("stripe", STRIPE_SECRET)
    headers = stripe_headers(STRIPE_BODY, NOW - age)
    if ok:
        assert verify(source, headers, STRIPE_BODY, NOW).timestamp == NOW - age
    else:
        assert_fails("timestamp_out_of_tolerance", source, headers, STRIPE_BODY)


def test_stripe_configured_tolerance_is_honoured() -> None:
    source = _source("stripe", STRIPE_SECRET, tolerance=60)
    assert verify(source, stripe_headers(STRIPE_BODY, NOW - 60), STRIPE_BODY, NOW).source == "src"
    assert_fails("timestamp_out_of_tolerance", source, stripe_headers(STRIPE_BODY, NOW - 61), STRIPE_BODY)


def test_stripe_several_v1_signatures_pass_when_any_matches() -> None:
    # Stripe sends one v1 per active endpoint secret while the endpoint's secret is being rolled.
    good = stripe_signature(STRIPE_BODY, NOW)
    other = stripe_signature(STRIPE_BODY, NOW, "some-other-secret")
    header = {"stripe-signature": f"t={NOW},v1={other},v1={good},v0={'0' * 64}"}
    assert verify(_source("stripe", STRIPE_SECRET), header, STRIPE_BODY, NOW).source == "src"


def test_stripe_rotation_accepts_either_configured_secret() -> None:
    source = _source("stripe", STRIPE_OLD_SECRET, STRIPE_SECRET)
    for secret in (STRIPE_OLD_SECRET, STRIPE_SECRET):
        assert verify(source, stripe_headers(STRIPE_BODY, NOW, secret), STRIPE_BODY, NOW).tenant_id == "acme"


def test_stripe_signature_binds_the_timestamp() -> None:
    # A replayer cannot refresh t: the signature covers it.
    signature = stripe_signature(STRIPE_BODY, NOW - 3600)
    assert_fails(
        "signature_mismatch",
        _source("stripe", STRIPE_SECRET),
        {"stripe-signature": f"t={NOW},v1={signature}"},
        STRIPE_BODY,
    )


def test_stripe_stale_but_authentic_delivery_reports_tolerance_not_mismatch() -> None:
    assert_fails(
        "timestamp_out_of_tolerance",
        _source("stripe", STRIPE_SECRET),
        stripe_headers(STRIPE_BODY, NOW - 3600),
        STRIPE_BODY,
    )


def test_stripe_one_byte_change_fails() -> None:
    headers = stripe_headers(STRIPE_BODY, NOW)
    assert_fails(
        "signature_mismatch", _source("stripe", STRIPE_SECRET), headers, flip_one_byte(STRIPE_BODY, 5)
    )


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "signature_missing"),
        ("", "malformed_signature"),
        ("v1=" + "0" * 64, "malformed_signature"),  # no t
        (f"t={NOW},t={NOW},v1=" + "0" * 64, "malformed_signature"),  # two t
        ("t=yesterday,v1=" + "0" * 64, "malformed_signature"),
        ("t=-5,v1=" + "0" * 64, "malformed_signature"),
        ("t=" + "9" * 5000 + ",v1=" + "0" * 64, "malformed_signature"),  # beyond int()'s digit limit
        (f"t={NOW}", "malformed_signature"),  # no v1
        (f"t={NOW},v0=" + "0" * 64, "malformed_signature"),  # only the test-mode scheme
        (f"t={NOW},v1=nothex", "malformed_signature"),
        (f"t={NOW},v1=" + "0" * 64, "signature_mismatch"),
    ],
)
def test_stripe_malformed_headers_give_their_code(header: str | None, code: str) -> None:
    headers = {} if header is None else {"stripe-signature": header}
    assert_fails(code, _source("stripe", STRIPE_SECRET), headers, STRIPE_BODY)


# --- Standard Webhooks -------------------------------------------------------------------------------------

# Published vector: standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py
# (test_sign_function), the reference implementation's own known-answer test.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def _vector_headers(signature: str = VECTOR_SIGNATURE) -> dict[str, str]:
    return {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": signature,
    }


def test_standard_published_vector_verifies() -> None:
    source = _source("standard", VECTOR_SECRET)
    result = verify(source, _vector_headers(), VECTOR_BODY, VECTOR_TIMESTAMP)
    assert result == Verified("src", "acme", VECTOR_ID, None, VECTOR_TIMESTAMP, identity=VECTOR_ID)


def test_standard_published_vector_with_one_signature_character_changed_fails() -> None:
    # The reference tests' "invalid signature": the same value with its last base64 digit changed.
    headers = _vector_headers("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=")
    assert_fails(
        "signature_mismatch", _source("standard", VECTOR_SECRET), headers, VECTOR_BODY, VECTOR_TIMESTAMP
    )


def test_standard_secret_is_accepted_with_or_without_prefix_and_padding() -> None:
    for secret in (VECTOR_SECRET, VECTOR_SECRET.removeprefix("whsec_"), STANDARD_SECRET.rstrip("=")):
        source = _source("standard", secret)
        body = b"{}"
        key = "whsec_" + secret.removeprefix("whsec_") + "=" * (-len(secret.removeprefix("whsec_")) % 4)
        headers = standard_headers(body, NOW, secret=key)
        assert verify(source, headers, body, NOW).delivery_id == "msg_1"


def test_standard_multiple_signatures_with_other_versions_pass_when_one_v1_matches() -> None:
    # Mirrors the reference library's multi-signature test: v1 misses, a v2, and v1a (asymmetric) entries.
    signatures = " ".join(
        [
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==",
            VECTOR_SIGNATURE,
        ]
    )
    source = _source("standard", VECTOR_SECRET)
    assert verify(source, _vector_headers(signatures), VECTOR_BODY, VECTOR_TIMESTAMP).source == "src"


def test_standard_rotation_accepts_either_configured_secret() -> None:
    body = b'{"type": "user.created"}'
    source = _source("standard", STANDARD_OLD_SECRET, STANDARD_SECRET)
    for secret in (STANDARD_OLD_SECRET, STANDARD_SECRET):
        assert verify(source, standard_headers(body, NOW, secret=secret), body, NOW).tenant_id == "acme"
    assert_fails(
        "signature_mismatch",
        _source("standard", STANDARD_SECRET),
        standard_headers(body, NOW, secret=STANDARD_OLD_SECRET),
        body,
    )


@pytest.mark.parametrize(("age", "ok"), [(300, True), (301, False), (-300, True), (-301, False)])
def test_standard_timestamp_tolerance_edges(age: int, ok: bool) -> None:
    body = b"{}"
    source = _source("standard", STANDARD_SECRET)
    headers = standard_headers(body, NOW - age)
    if ok:
        assert verify(source, headers, body, NOW).timestamp == NOW - age
    else:
        assert_fails("timestamp_out_of_tolerance", source, headers, body)


def test_standard_signature_binds_id_and_timestamp() -> None:
    body = b"{}"
    source = _source("standard", STANDARD_SECRET)
    headers = standard_headers(body, NOW, msg_id="msg_1")
    assert_fails("signature_mismatch", source, {**headers, "webhook-id": "msg_2"}, body)
    assert_fails("signature_mismatch", source, {**headers, "webhook-timestamp": str(NOW + 1)}, body)
    assert_fails("signature_mismatch", source, headers, flip_one_byte(b"{}", 1))


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"webhook-signature": None}, "signature_missing"),
        ({"webhook-id": None}, "signature_missing"),
        ({"webhook-timestamp": None}, "signature_missing"),
        ({"webhook-id": ""}, "signature_missing"),
        ({"webhook-timestamp": "1614265330.5"}, "malformed_signature"),
        ({"webhook-timestamp": "soon"}, "malformed_signature"),
        ({"webhook-timestamp": "١٦١٤٢٦٥٣٣٠"}, "malformed_signature"),  # Arabic-Indic digits: int() takes them
        (
            {"webhook-signature": "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
            "malformed_signature",
        ),  # no v1,
        ({"webhook-signature": "v1,not base64!"}, "malformed_signature"),
        ({"webhook-signature": "v1,AAAA"}, "malformed_signature"),  # base64 but not 32 bytes
        ({"webhook-signature": "v1a,AAAA"}, "malformed_signature"),  # asymmetric: not configured
        ({"webhook-id": "msg_\ud800"}, "malformed_signature"),  # a lone surrogate from a JSON escape
    ],
)
def test_standard_malformed_headers_give_their_code(change: dict[str, str | None], code: str) -> None:
    headers: dict[str, str] = _vector_headers()
    for name, value in change.items():
        if value is None:
            del headers[name]
        else:
            headers[name] = value
    assert_fails(code, _source("standard", VECTOR_SECRET), headers, VECTOR_BODY, VECTOR_TIMESTAMP)


# --- Any input: Verified or SignatureError, nothing else ----------------------------------------------------

_hexes = st.text(alphabet="0123456789abcdefABCDEF", min_size=0, max_size=70)
_digits = st.text(alphabet="0123456789", min_size=0, max_size=20)
_b64 = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=50)
_header_value = st.one_of(
    st.text(max_size=60),
    st.builds(lambda h: "sha256=" + h, _hexes),
    st.builds(lambda t, h, x: f"t={t},v1={h},{x}", _digits, _hexes, st.text(max_size=20)),
    st.builds(
        lambda v, b, x: f"{v},{b} {x}", st.sampled_from(["v1", "v1a", "v2", ""]), _b64, st.text(max_size=20)
    ),
    _digits,
)
_header_names = st.sampled_from(
    [
        *("x-hub-signature-256", "x-github-delivery", "x-github-event", "stripe-signature"),
        *("webhook-id", "webhook-timestamp", "webhook-signature", "content-type"),
    ]
)
_sources = {
    scheme: _source(scheme, secret)
    for scheme, secret in (
        ("github", GITHUB_SECRET),
        ("stripe", STRIPE_SECRET),
        ("standard", STANDARD_SECRET),
    )
}
# Well-shaped headers (right names, right formats, random digests) so the search also reaches the HMAC
# comparison and the clock check, not only the parsers' early exits.
_hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
_b64_32 = st.binary(min_size=32, max_size=32).map(lambda b: base64.b64encode(b).decode())
_unix = st.integers(0, 10**12).map(str)
_shaped = {
    "github": st.fixed_dictionaries({"x-hub-signature-256": _hex64.map(lambda h: "sha256=" + h)}),
    "stripe": st.fixed_dictionaries(
        {"stripe-signature": st.builds(lambda t, a, b: f"t={t},v1={a},v1={b}", _unix, _hex64, _hex64)}
    ),
    "standard": st.fixed_dictionaries(
        {
            "webhook-id": st.text(max_size=30),
            "webhook-timestamp": _unix,
            "webhook-signature": st.lists(_b64_32.map(lambda b: "v1," + b), min_size=1, max_size=3).map(
                " ".join
            ),
        }
    ),
}


@st.composite
def _scheme_and_headers(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    scheme = draw(st.sampled_from(sorted(_sources)))
    headers = draw(st.dictionaries(_header_names, _header_value, max_size=4))
    if draw(st.booleans()):
        headers.update(draw(_shaped[scheme]))
    return scheme, headers


@given(
    case=_scheme_and_headers(),
    body=st.binary(max_size=300),
    now=st.floats(allow_nan=True, allow_infinity=True) | st.integers(0, 2**40),
)
def test_any_headers_and_body_give_verified_or_signature_error_only(
    case: tuple[str, dict[str, str]], body: bytes, now: float
) -> None:
    scheme, headers = case
    # Random input cannot forge an HMAC, so the only acceptable outcome is a SignatureError with a known
    # code: any other exception (ValueError, UnicodeError, OverflowError...) fails the test.
    with pytest.raises(SignatureError) as info:
        verify(_sources[scheme], headers, body, now)
    assert info.value.reason in REASONS
    assert all(secret not in str(info.value) for secret in ALL_SECRETS)


@given(body=st.binary(max_size=2000), index=st.integers(min_value=0))
def test_every_scheme_accepts_its_own_signature_and_rejects_any_one_bit_flip(body: bytes, index: int) -> None:
    signed = {
        "github": github_headers(body),
        "stripe": stripe_headers(body, NOW),
        "standard": standard_headers(body, NOW),
    }
    for scheme, headers in signed.items():
        assert verify(_sources[scheme], headers, body, NOW).tenant_id == "acme"
        if body:
            tampered = flip_one_byte(body, index % len(body))
            with pytest.raises(SignatureError) as info:
                verify(_sources[scheme], headers, tampered, NOW)
            assert info.value.reason == "signature_mismatch"


@given(now=st.floats(allow_nan=True) | st.integers(NOW - 400, NOW + 400))
def test_a_nan_or_any_clock_never_lets_a_stale_stripe_signature_through(now: float) -> None:
    headers = stripe_headers(STRIPE_BODY, NOW)
    if abs(now - NOW) <= 300:
        assert verify(_sources["stripe"], headers, STRIPE_BODY, now).timestamp == NOW
    else:  # NaN lands here too: the comparison is false, and the check fails closed
        with pytest.raises(SignatureError) as info:
            verify(_sources["stripe"], headers, STRIPE_BODY, now)
        assert info.value.reason == "timestamp_out_of_tolerance"


# --- Configuration -----------------------------------------------------------------------------------------


def test_load_config_parses_all_three_schemes_with_defaults() -> None:
    text = orjson.dumps(
        {
            "github-acme": {"scheme": "github", "tenant_id": "acme", "secrets": [GITHUB_SECRET]},
            "stripe": {
                "scheme": "stripe",
                "tenant_id": "acme",
                "secrets": [STRIPE_SECRET, STRIPE_OLD_SECRET],
            },
            "svix.beta": {
                "scheme": "standard",
                "tenant_id": "beta",
                "secrets": [VECTOR_SECRET],
                "tolerance_seconds": 60,
            },
        }
    ).decode()
    sources = load_config(text)
    assert sources["github-acme"] == WebhookSource(
        "github-acme", "github", "acme", (GITHUB_SECRET.encode(),), 300
    )
    assert sources["stripe"].secrets == (STRIPE_SECRET.encode(), STRIPE_OLD_SECRET.encode())
    assert sources["svix.beta"].secrets == (base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),)
    assert sources["svix.beta"].tolerance_seconds == 60


@pytest.mark.parametrize("text", ["", "   ", "{}"])
def test_load_config_empty_means_no_sources(text: str) -> None:
    assert load_config(text) == {}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("[]", r"must be a JSON object"),
        ('{"gh": ', r"not valid JSON"),
        ({"gh": "github"}, r"WEBHOOK_SECRETS\['gh'\] must be an object"),
        ({"g h": {"scheme": "github", "tenant_id": "acme", "secrets": ["s"]}}, r"source name"),
        (
            {"gh": {"scheme": "gitlab", "tenant_id": "acme", "secrets": ["s"]}},
            r"\['gh'\]\.scheme must be one of",
        ),
        ({"gh": {"scheme": "github", "secrets": ["s"]}}, r"\['gh'\]\.tenant_id"),
        ({"gh": {"scheme": "github", "tenant_id": "a/b", "secrets": ["s"]}}, r"\['gh'\]\.tenant_id"),
        ({"gh": {"scheme": "github", "tenant_id": "acme\n", "secrets": ["s"]}}, r"\['gh'\]\.tenant_id"),
        ({"gh": {"scheme": "github", "tenant_id": "acme"}}, r"\['gh'\]\.secrets must be a non-empty list"),
        (
            {"gh": {"scheme": "github", "tenant_id": "acme", "secrets": []}},
            r"\.secrets must be a non-empty list",
        ),
        (
            {"gh": {"scheme": "github", "tenant_id": "acme", "secrets": "s"}},
            r"\.secrets must be a non-empty list",
        ),
        ({"gh": {"scheme": "github", "tenant_id": "acme", "secrets": ["s", ""]}}, r"\.secrets\[1\] must be"),
        ({"gh": {"scheme": "github", "tenant_id": "acme", "secret": ["s"]}}, r"unknown field\(s\) secret"),
        (
            {"sw": {"scheme": "standard", "tenant_id": "acme", "secrets": ["whsec_not*base64"]}},
            r"\['sw'\]\.secrets\[0\] is not base64 after the whsec_ prefix",
        ),
        (
            {"sw": {"scheme": "standard", "tenant_id": "acme", "secrets": ["whsec_"]}},
            r"\.secrets\[0\] must be|empty key",
        ),
        (
            {"gh": {"scheme": "github", "tenant_id": "acme", "secrets": ["s"], "tolerance_seconds": 0}},
            r"\.tolerance_seconds must be a positive integer",
        ),
        (
            {"gh": {"scheme": "github", "tenant_id": "acme", "secrets": ["s"], "tolerance_seconds": True}},
            r"\.tolerance_seconds must be a positive integer",
        ),
        (
            {"gh": {"scheme": "github", "tenant_id": "acme", "secrets": ["s"], "tolerance_seconds": "300"}},
            r"\.tolerance_seconds must be a positive integer",
        ),
    ],
)
def test_load_config_errors_name_the_bad_field(document: object, message: str) -> None:
    text = document if isinstance(document, str) else orjson.dumps(document).decode()
    with pytest.raises(WebhookConfigError, match=message):
        load_config(text)


def test_config_errors_and_reprs_never_show_a_secret() -> None:
    secret = "whsec_super*secret*value"
    with pytest.raises(WebhookConfigError) as info:
        load_config(
            orjson.dumps({"sw": {"scheme": "standard", "tenant_id": "acme", "secrets": [secret]}}).decode()
        )
    assert "super" not in str(info.value)
    with pytest.raises(WebhookConfigError) as info:
        load_config(
            '{"gh": {"scheme": "github", "tenant_id": "acme", "secrets": ["leaky-secret"]'
        )  # truncated
    assert "leaky" not in str(info.value)
    source = _source("github", GITHUB_SECRET)
    assert GITHUB_SECRET not in repr(source)
    assert GITHUB_SECRET not in repr(
        _config(gh={"scheme": "github", "tenant_id": "a", "secrets": [GITHUB_SECRET]})
    )


# --- Routing helpers ---------------------------------------------------------------------------------------


def test_verify_delivery_routes_by_source_name_and_takes_the_tenant_from_config() -> None:
    sources = _config(
        acme={"scheme": "github", "tenant_id": "acme", "secrets": [GITHUB_SECRET]},
        beta={"scheme": "github", "tenant_id": "beta", "secrets": [GITHUB_OLD_SECRET]},
    )
    body = b'{"tenant_id": "acme"}'  # a body naming another tenant changes nothing
    assert (
        verify_delivery(sources, "beta", github_headers(body, GITHUB_OLD_SECRET), body, NOW).tenant_id
        == "beta"
    )
    # a delivery signed for acme, sent to beta's route, fails: the secret is per source
    with pytest.raises(SignatureError) as info:
        verify_delivery(sources, "beta", github_headers(body, GITHUB_SECRET), body, NOW)
    assert info.value.reason == "signature_mismatch"


@pytest.mark.parametrize(("name", "shown"), [("nope", "'nope'"), ("<script>" * 20, "(invalid name)")])
def test_verify_delivery_unknown_source_is_told_apart_only_in_the_detail(name: str, shown: str) -> None:
    with pytest.raises(SignatureError) as info:
        verify_delivery({}, name, {}, b"", NOW)
    assert info.value.reason == "unknown_source"
    assert shown in info.value.detail and shown not in info.value.message


def test_an_unknown_source_answers_exactly_as_a_known_one_badly_signed() -> None:
    # GIVEN a configured source, and failures of every kind against it and against unknown names
    sources = _config(
        **{"acme-github": {"scheme": "github", "tenant_id": "acme", "secrets": [GITHUB_SECRET]}}
    )
    body = b'{"a":1}'
    failures = []
    for name, headers in [
        ("acme-github", {}),
        ("acme-github", {"x-hub-signature-256": "sha256=zz"}),
        ("acme-github", github_headers(body, GITHUB_OLD_SECRET)),
        ("globex-github", {}),
        ("globex-github", github_headers(body)),
    ]:
        with pytest.raises(SignatureError) as info:
            verify_delivery(sources, name, headers, body, NOW)
        failures.append(info.value)
    # THEN what the client is told (status, code, message) is the same; only the reason differs
    assert len({(f.status, f.code, f.message) for f in failures}) == 1
    assert failures[0].status == 401
    assert [f.reason for f in failures] == [
        "signature_missing",
        "malformed_signature",
        "signature_mismatch",
        "unknown_source",
        "unknown_source",
    ]


def test_every_failure_is_a_401_whatever_its_reason() -> None:
    assert {SignatureError(reason, "x").status for reason in REASONS} == {401}


def test_configured_sources_reads_webhook_secrets_once(monkeypatch: pytest.MonkeyPatch) -> None:
    configured_sources.cache_clear()
    monkeypatch.setenv(
        "WEBHOOK_SECRETS",
        orjson.dumps({"gh": {"scheme": "github", "tenant_id": "acme", "secrets": ["s"]}}).decode(),
    )
    try:
        assert configured_sources()["gh"].tenant_id == "acme"
        monkeypatch.setenv("WEBHOOK_SECRETS", "{}")
        assert "gh" in configured_sources()  # cached for the life of the process
    finally:
        configured_sources.cache_clear()
