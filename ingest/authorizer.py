"""API Gateway HTTP API Lambda authorizer: ``Authorization: Bearer <api key>`` (or Basic) -> tenant.

The key is taken from ``Bearer <key>`` or from ``Basic base64(<user>:<key>)``, the password being the
key and the user name anything (Loki's clients, Promtail, Alloy and python-logging-loki, offer Basic
auth; many put the tenant there), or from ``Basic base64(<key>:)``, the user name being the key when
the password is empty (the Segment and RudderStack SDKs' write key).

REQUEST authorizer, payload format 2.0, simple responses. API Gateway caches each decision for the
identity source (``$request.header.Authorization``) for its TTL (300 s), so DynamoDB sees one GetItem per
key per cache period, and a revoked key keeps working until its cached "allow" expires.

Status codes the client sees (all produced by API Gateway, not by us):
- no ``Authorization`` header at all: 401, and this function is not even invoked;
- ``{"isAuthorized": false}`` (malformed header, unknown or revoked key): 403;
- this function failing (e.g. DynamoDB unavailable): 500. It fails closed: nothing is authorized.

On success the integration receives ``{"tenant_id", "key_id"}`` at ``requestContext.authorizer.lambda``
(the ingest handler reads it there). The local API Gateway (``local/http.py``) calls this module's
``lambda_handler`` in front of the ingest handler, answering 401 and 403 as API Gateway does. The key
itself never reaches a log line: only its public ``key_id``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from core.settings import AuthorizerSettings
from core.tenancy import is_valid_tenant_id
from ingest.apikeys import ApiKeyStore, is_well_formed, key_id_of

logger = Logger()

DENIED_METRIC = "AuthorizerDenied"
Lookup = Callable[[str], str | None]  # api key -> tenant id, None when unknown or revoked


@dataclass(frozen=True)
class Decision:
    """The outcome for one request; ``reason`` is a metric dimension, so it has few values."""

    authorized: bool
    reason: str  # "ok" | "missing_credentials" | "malformed_credentials" | "unknown_or_revoked_key"
    tenant_id: str | None = None
    key_id: str | None = None

    def response(self) -> dict[str, Any]:
        """The simple response; API Gateway hands ``context`` on as ``requestContext.authorizer.lambda``."""
        if not self.authorized:
            return {"isAuthorized": False}
        return {"isAuthorized": True, "context": {"tenant_id": self.tenant_id, "key_id": self.key_id}}


def _authorization(event: Mapping[str, Any]) -> str | None:
    """The raw Authorization value from an authorizer or integration event (header names in any case)."""
    for name, value in (event.get("headers") or {}).items():
        if name.lower() == "authorization" and isinstance(value, str) and value.strip():
            return value
    # An authorizer event also carries the identity source values; the header is the only one we use.
    sources = event.get("identitySource") or []
    if sources and isinstance(sources[0], str) and sources[0].strip():
        return sources[0]
    return None


def bearer_token(authorization: str) -> str | None:
    """The token of ``Bearer <token>`` (scheme case-insensitive, RFC 6750), or None for anything else."""
    parts = authorization.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    return parts[1]


def _basic_credentials(authorization: str) -> tuple[str, str] | None:
    """``(user, password)`` of ``Basic base64(user:password)`` (RFC 7617), or None for anything else."""
    parts = authorization.split()
    if len(parts) != 2 or parts[0].lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(parts[1], validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def basic_password(authorization: str) -> str | None:
    """The password of ``Basic base64(user:password)`` (RFC 7617), or None for anything else."""
    credentials = _basic_credentials(authorization)
    return credentials[1] if credentials and credentials[1] else None


def basic_username_key(authorization: str) -> str | None:
    """The user name of ``Basic base64(user:)`` (an empty password), as the Segment and RudderStack
    SDKs send their write key; None for anything else."""
    credentials = _basic_credentials(authorization)
    return credentials[0] if credentials and credentials[0] and not credentials[1] else None


def api_key_of(authorization: str) -> str | None:
    """The API key an Authorization value carries: a Bearer token, a Basic password, or the Basic user
    name when the password is empty (``base64(writeKey:)``, the Segment convention)."""
    return bearer_token(authorization) or basic_password(authorization) or basic_username_key(authorization)


def decide(event: Mapping[str, Any], lookup: Lookup) -> Decision:
    """Pure decision for one request; ``lookup`` is only called for well-formed keys."""
    authorization = _authorization(event)
    if authorization is None:
        return Decision(False, "missing_credentials")
    token = api_key_of(authorization)
    if token is None or not is_well_formed(token):
        return Decision(False, "malformed_credentials")
    key_id = key_id_of(token)
    tenant_id = lookup(token)
    if tenant_id is None or not is_valid_tenant_id(tenant_id):
        return Decision(False, "unknown_or_revoked_key", key_id=key_id)
    return Decision(True, "ok", tenant_id=tenant_id, key_id=key_id)


def _record(decision: Decision) -> None:
    # Structured fields only: the key, the header and the event are never passed to the logger.
    if decision.authorized:
        logger.info("api key accepted", extra={"key_id": decision.key_id, "tenant_id": decision.tenant_id})
        return
    logger.info("request denied", extra={"reason": decision.reason, "key_id": decision.key_id})
    # single_metric flushes at once, so the local runtime (no log_metrics decorator) emits it too.
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "sluice"
    with single_metric(name=DENIED_METRIC, unit=MetricUnit.Count, value=1, namespace=namespace) as metric:
        metric.add_dimension(name="reason", value=decision.reason)


def authorize(event: Mapping[str, Any], lookup: Lookup) -> dict[str, Any]:
    """Decide, log (key id only), count denials, and return the simple response for API Gateway."""
    decision = decide(event, lookup)
    _record(decision)
    return decision.response()


@functools.cache
def key_store() -> ApiKeyStore:
    """The process-wide key store (created on first use, never at import; ``cache_clear()`` in tests)."""
    return ApiKeyStore(AuthorizerSettings.from_env().api_keys_table_name)


# log_event=False explicitly: POWERTOOLS_LOGGER_LOG_EVENT=true would otherwise log the Authorization header.
@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return authorize(event, key_store().lookup)
