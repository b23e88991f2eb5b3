"""Webhook signature verification: the signature is the authentication of ``POST /webhooks/{source}``.

Pure functions over the raw request: no AWS, no environment (except the one cached factory at the end,
which parses ``WEBHOOK_SECRETS`` lazily). Three schemes are supported:

- ``github``: ``X-Hub-Signature-256: sha256=<hex>``, HMAC-SHA256 of the body. GitHub signs neither a
  timestamp nor its headers, so there is no replay window to enforce and ``X-GitHub-Delivery`` and
  ``X-GitHub-Event`` prove nothing: the identity is a hash of the signed body (a re-sent body is the same
  record whatever delivery id it claims) and the event header is only a claimed type.
- ``stripe``: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]``, HMAC-SHA256 of ``"<t>.<body>"``.
- ``standard`` (standardwebhooks.com, v1 symmetric): ``webhook-id``, ``webhook-timestamp`` and
  ``webhook-signature: v1,<base64> [v1,<base64> ...]``, HMAC-SHA256 of ``"<id>.<timestamp>.<body>"`` keyed
  with the base64-decoded ``whsec_`` secret.

Every scheme is checked over the RAW body bytes exactly as received (after API Gateway's base64 transport
encoding is undone, before any gzip decompression or JSON parsing): re-serialising changes the bytes and
breaks the signature. Comparisons are constant-time. A source may list several secrets so a secret can be
rotated without downtime: any one matching passes. Secret values never appear in an exception message,
a ``repr`` or a log line.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from core.tenancy import is_valid_tenant_id
from ingest import webhook_secrets

SCHEMES: Final = ("github", "stripe", "standard")
DEFAULT_TOLERANCE_SECONDS: Final = 300  # Stripe's and Standard Webhooks' recommended replay window.
STANDARD_SECRET_PREFIX: Final = "whsec_"  # noqa: S105 (a format marker, not a secret)

# A source name is a path segment of the public route, so it is shaped like a tenant id.
SOURCE_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
# Unix seconds; bounded so int() never sees a huge digit string (and [0-9], unlike \d, is ASCII only).
_UNIX_SECONDS = re.compile(r"[0-9]{1,15}")

# Why a request failed verification: for logs and tests, never for the client (see SignatureError).
REASONS: Final = frozenset(
    {
        "unknown_source",
        "signature_missing",
        "malformed_signature",
        "signature_mismatch",
        "timestamp_out_of_tolerance",
    }
)


class WebhookConfigError(ValueError):
    """``WEBHOOK_SECRETS`` is malformed; the message names the source and field, never a secret."""


class SignatureError(Exception):
    """A webhook request failed verification.

    ``status``, ``code`` and ``message`` are what the client is told, and they are the same for every
    failure, an unknown source included: source names often contain tenant names, and a different answer
    for a name that exists (or a message naming the scheme's headers) would let anyone list them.
    ``reason`` (one of ``REASONS``) and ``detail`` say which check failed, for logs only.
    """

    status: Final[int] = 401
    code: Final[str] = "signature_invalid"
    message: Final[str] = "the request is not signed by a configured webhook source"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class WebhookSource:
    """One configured sender: its scheme, the tenant its deliveries belong to, and its active secrets."""

    name: str
    scheme: str
    tenant_id: str
    # HMAC keys as bytes (for ``standard``, already base64-decoded). Kept out of repr so a logged or
    # printed source never shows them.
    secrets: tuple[bytes, ...] = field(repr=False)
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS


@dataclass(frozen=True)
class Verified:
    """What a verified delivery tells the ingest handler besides its body.

    Only ``identity`` (and the body) are signed; ``delivery_id`` and ``event_type`` are what unsigned
    headers claim, except for Standard Webhooks whose ``webhook-id`` is signed and is the identity.
    """

    source: str
    tenant_id: str
    delivery_id: str | None  # the delivery id header as sent (signed for ``standard`` only)
    event_type: str | None  # GitHub's X-GitHub-Event: unsigned, a claimed type
    timestamp: int | None  # the signed timestamp, where the scheme signs one
    # The signed identity of the delivery: Standard Webhooks' webhook-id, GitHub's body digest
    # ("sha256:<hex>"). For Stripe the body's ``id_field`` ("id": "evt_...") names each event, and the
    # body digest is the identity of an event without one.
    identity: str | None = None
    id_field: str | None = None


# ---------------------------------------------------------------------------------------------------------
# Configuration


_SOURCE_FIELDS = frozenset({"scheme", "tenant_id", "secrets", "tolerance_seconds"})


def _decode_standard_secret(secret: str, where: str) -> bytes:
    raw = secret.removeprefix(STANDARD_SECRET_PREFIX)
    try:
        # Secrets are often copied without padding; b64decode ignores surplus padding but not a shortfall.
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except ValueError:
        raise WebhookConfigError(f"{where} is not base64 after the {STANDARD_SECRET_PREFIX} prefix") from None
    if not key:
        raise WebhookConfigError(f"{where} decodes to an empty key")
    return key


def _parse_source(name: str, spec: Any) -> WebhookSource:
    where = f"WEBHOOK_SECRETS[{name!r}]"
    if not SOURCE_NAME_RE.fullmatch(name):
        raise WebhookConfigError(
            f"{where}: source name must be 1-64 letters, digits, '.', '_' or '-' (it is a URL path segment)"
        )
    if not isinstance(spec, dict):
        raise WebhookConfigError(f"{where} must be an object with scheme, tenant_id and secrets")
    unknown = sorted(set(spec) - _SOURCE_FIELDS)
    if unknown:
        raise WebhookConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")
    scheme = spec.get("scheme")
    if scheme not in SCHEMES:
        raise WebhookConfigError(f"{where}.scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    tenant_id = spec.get("tenant_id")
    if not isinstance(tenant_id, str) or not is_valid_tenant_id(tenant_id):
        raise WebhookConfigError(f"{where}.tenant_id is not a valid tenant id: {tenant_id!r}")
    secrets = spec.get("secrets")
    if not isinstance(secrets, list) or not secrets:
        raise WebhookConfigError(f"{where}.secrets must be a non-empty list of strings")
    keys: list[bytes] = []
    for i, secret in enumerate(secrets):
        item = f"{where}.secrets[{i}]"
        if not isinstance(secret, str) or not secret:
            raise WebhookConfigError(f"{item} must be a non-empty string")
        keys.append(_decode_standard_secret(secret, item) if scheme == "standard" else secret.encode())
    tolerance = spec.get("tolerance_seconds", DEFAULT_TOLERANCE_SECONDS)
    # bool is an int subclass: `true` is not a tolerance.
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 1:
        raise WebhookConfigError(f"{where}.tolerance_seconds must be a positive integer, got {tolerance!r}")
    return WebhookSource(name, scheme, tenant_id, tuple(keys), tolerance)


def load_config(text: str) -> dict[str, WebhookSource]:
    """Parse the ``WEBHOOK_SECRETS`` JSON document: ``{source: {scheme, tenant_id, secrets, ...}}``.

    An empty document means no webhook sources. Raises ``WebhookConfigError`` naming the bad field.
    """
    if not text.strip():
        return {}
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        # The position is useful; the excerpt orjson would quote could contain a secret, so it is dropped.
        raise WebhookConfigError(f"WEBHOOK_SECRETS is not valid JSON (at char {exc.pos})") from None
    if not isinstance(document, dict):
        raise WebhookConfigError("WEBHOOK_SECRETS must be a JSON object mapping source name to its config")
    return {name: _parse_source(name, spec) for name, spec in document.items()}


# ---------------------------------------------------------------------------------------------------------
# Verification


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _matches_any(keys: tuple[bytes, ...], message: bytes, candidates: list[bytes]) -> bool:
    """True when some candidate equals HMAC(key, message) for some key, compared in constant time."""
    matched = False
    for key in keys:
        expected = _hmac_sha256(key, message)
        for candidate in candidates:
            # No early exit: the work done does not depend on which secret or candidate matched.
            matched |= hmac.compare_digest(expected, candidate)
    return matched


def _check_timestamp(timestamp: int, now: float, tolerance: int) -> None:
    # Written as "not within" so a NaN clock fails closed. Both directions are bounded: Stripe's own
    # library only rejects old timestamps, but a future one within the window is clock skew either way.
    if not abs(now - timestamp) <= tolerance:
        raise SignatureError(
            "timestamp_out_of_tolerance",
            f"signed timestamp {timestamp} is more than {tolerance} s away from the server clock",
        )


def body_identity(body: bytes) -> str:
    """The identity of a delivery whose only signed material is its body: ``sha256:<hex digest>``."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _verify_github(source: WebhookSource, headers: Mapping[str, str], body: bytes) -> Verified:
    header = headers.get("x-hub-signature-256")
    if header is None:
        raise SignatureError("signature_missing", "X-Hub-Signature-256 header is missing")
    scheme, sep, digest = header.strip().partition("=")
    if not sep or scheme != "sha256" or not _HEX_SHA256.fullmatch(digest):
        raise SignatureError("malformed_signature", "X-Hub-Signature-256 must be sha256=<64 hex digits>")
    if not _matches_any(source.secrets, body, [bytes.fromhex(digest)]):
        raise SignatureError("signature_mismatch", "X-Hub-Signature-256 does not match the body")
    return Verified(
        source=source.name,
        tenant_id=source.tenant_id,
        delivery_id=headers.get("x-github-delivery") or None,
        event_type=headers.get("x-github-event") or None,
        timestamp=None,
        identity=body_identity(body),
    )


def _verify_stripe(source: WebhookSource, headers: Mapping[str, str], body: bytes, now: float) -> Verified:
    header = headers.get("stripe-signature")
    if header is None:
        raise SignatureError("signature_missing", "Stripe-Signature header is missing")
    timestamps: list[str] = []
    candidates: list[bytes] = []
    for element in header.split(","):
        key, sep, value = element.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            timestamps.append(value)
        elif key == "v1" and _HEX_SHA256.fullmatch(value):
            candidates.append(bytes.fromhex(value))
        # Other schemes (v0 is Stripe's test-mode scheme) are ignored, as Stripe's libraries do.
    if len(timestamps) != 1 or not _UNIX_SECONDS.fullmatch(timestamps[0]):
        raise SignatureError(
            "malformed_signature", "Stripe-Signature must carry exactly one t=<unix seconds>"
        )
    if not candidates:
        raise SignatureError(
            "malformed_signature", "Stripe-Signature carries no v1=<64 hex digits> signature"
        )
    signed_payload = timestamps[0].encode() + b"." + body
    if not _matches_any(source.secrets, signed_payload, candidates):
        raise SignatureError("signature_mismatch", "no v1 signature in Stripe-Signature matches the body")
    # Checked after the signature, so only an authentic but stale (or replayed) delivery reports it.
    timestamp = int(timestamps[0])
    _check_timestamp(timestamp, now, source.tolerance_seconds)
    return Verified(
        source.name,
        source.tenant_id,
        delivery_id=None,
        event_type=None,
        timestamp=timestamp,
        identity=body_identity(body),
        id_field="id",
    )


def _decode_standard_signature(value: str) -> bytes | None:
    try:
        decoded = base64.b64decode(value, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        return None
    return decoded if len(decoded) == hashlib.sha256().digest_size else None


def _verify_standard(source: WebhookSource, headers: Mapping[str, str], body: bytes, now: float) -> Verified:
    msg_id = headers.get("webhook-id")
    msg_timestamp = headers.get("webhook-timestamp")
    msg_signature = headers.get("webhook-signature")
    if not (msg_id and msg_timestamp and msg_signature):
        missing = [
            name for name in ("webhook-id", "webhook-timestamp", "webhook-signature") if not headers.get(name)
        ]
        raise SignatureError("signature_missing", f"missing header(s): {', '.join(missing)}")
    if not _UNIX_SECONDS.fullmatch(msg_timestamp):
        raise SignatureError("malformed_signature", "webhook-timestamp must be integer unix seconds")
    candidates: list[bytes] = []
    for versioned in msg_signature.split():
        version, sep, value = versioned.partition(",")
        # v1a (asymmetric ed25519) and unknown versions are skipped: only v1 (HMAC-SHA256) is configured.
        if sep and version == "v1" and (decoded := _decode_standard_signature(value)) is not None:
            candidates.append(decoded)
    if not candidates:
        raise SignatureError("malformed_signature", "webhook-signature carries no v1,<base64> signature")
    try:
        signed_content = f"{msg_id}.{msg_timestamp}.".encode() + body
    except UnicodeEncodeError:  # a lone surrogate smuggled in through a JSON-escaped header value
        raise SignatureError("malformed_signature", "webhook-id is not encodable text") from None
    if not _matches_any(source.secrets, signed_content, candidates):
        raise SignatureError("signature_mismatch", "no v1 signature in webhook-signature matches the body")
    timestamp = int(msg_timestamp)
    _check_timestamp(timestamp, now, source.tolerance_seconds)
    return Verified(
        source.name,
        source.tenant_id,
        delivery_id=msg_id,
        event_type=None,
        timestamp=timestamp,
        identity=msg_id,
    )


def verify(source: WebhookSource, headers: Mapping[str, str], body: bytes, now: float) -> Verified:
    """Verify one delivery of ``source`` and return what it proves, or raise ``SignatureError``.

    ``headers`` must have lower-cased names (API Gateway payload 2.0 and the local gateway already do),
    ``body`` is the raw bytes as received, ``now`` is the server clock in unix seconds (``time.time()``).
    Never raises anything but ``SignatureError`` for any header values or body.
    """
    if source.scheme == "github":
        return _verify_github(source, headers, body)
    if source.scheme == "stripe":
        return _verify_stripe(source, headers, body, now)
    if source.scheme == "standard":
        return _verify_standard(source, headers, body, now)
    raise SignatureError("unknown_source", f"source {source.name!r} has an unsupported scheme")


def verify_delivery(
    sources: Mapping[str, WebhookSource],
    source_name: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
) -> Verified:
    """Look up ``source_name`` (the ``{source}`` path parameter) and verify the delivery against it."""
    source = sources.get(source_name)
    if source is None:
        # The name is echoed back only when it is well-formed, so the message cannot carry arbitrary input.
        shown = repr(source_name) if SOURCE_NAME_RE.fullmatch(source_name) else "(invalid name)"
        raise SignatureError("unknown_source", f"no webhook source named {shown} is configured")
    return verify(source, headers, body, now)


@functools.lru_cache(maxsize=4)
def _parse_config(document: str) -> Mapping[str, WebhookSource]:
    return load_config(document)


class _ConfiguredSources:
    """``configured_sources()``: the sources of ``WEBHOOK_SECRETS``, or of the Secrets Manager secret
    ``WEBHOOK_SECRETS_ARN`` names (re-read after its TTL, ``ingest/webhook_secrets.py``), each document
    parsed once. ``cache_clear()`` in tests."""

    def __call__(self) -> Mapping[str, WebhookSource]:
        return _parse_config(webhook_secrets.document())

    def cache_clear(self) -> None:
        webhook_secrets.document_source.cache_clear()
        _parse_config.cache_clear()


configured_sources = _ConfiguredSources()
