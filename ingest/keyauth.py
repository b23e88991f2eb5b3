"""API keys checked inside the ingest function, for routes API Gateway's authorizer cannot guard.

The authorizer sees only headers; PostHog sends its key in the body (``api_key``/``token``) and the
Segment SDKs' error handling needs the refusal in Segment's own body shape (API Gateway's authorizer
answers ``{"message": "Forbidden"}``, on which rudder-sdk-python fails and resends). These routes have
no authorizer, and the handler calls ``tenant_for_key`` with the key the protocol carries.

The same rules as the authorizer (``ingest.authorizer``): only well-formed keys reach the store, and
it fails closed: a store that cannot answer gives 503 (retryable), never an open door. Decisions are
cached per container for ``TTL_SECONDS``, as API Gateway caches the authorizer's (a revoked key keeps
working until its cached answer expires; an unknown key is cached too, so guessing costs no reads).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable

from ingest.apikeys import ApiKeyStore, is_well_formed, key_id_of
from ingest.problems import Problem

TTL_SECONDS = 300.0
MAX_ENTRIES = 10_000
RETRY_AFTER_SECONDS = "2"
Lookup = Callable[[str], str | None]


class KeyCache:
    """Key -> tenant decisions of ``lookup``, each kept for ``ttl`` seconds (None: unknown or revoked)."""

    def __init__(self, lookup: Lookup, ttl: float = TTL_SECONDS, clock: Callable[[], float] = time.monotonic):
        self._lookup = lookup
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def tenant_for(self, key: str) -> str | None:
        """The tenant of an active key, None when it is malformed, unknown or revoked.

        Raises ``Problem(503)`` when the store cannot answer (nothing is cached then).
        """
        if not is_well_formed(key):
            return None
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        try:
            tenant = self._lookup(key)
        except Exception as exc:  # any store failure: fail closed, retryable
            raise Problem(
                503,
                "auth-unavailable",
                "the API key could not be checked; retry later",
                headers={"Retry-After": RETRY_AFTER_SECONDS},
                log={"key_id": key_id_of(key), "error": type(exc).__name__},
            ) from None
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (now + self._ttl, tenant)
        return tenant


@functools.cache
def key_cache() -> KeyCache:
    """The container's cache over the key store (``API_KEYS_TABLE_NAME``), built on first use."""
    from core.settings import AuthorizerSettings

    store = ApiKeyStore(AuthorizerSettings.from_env().api_keys_table_name)
    return KeyCache(store.lookup)


def tenant_for_key(key: str | None) -> str:
    """The tenant of ``key``, or ``Problem(401)`` (no key, or a malformed, unknown or revoked one)."""
    tenant = key_cache().tenant_for(key) if key else None
    if tenant is None:
        raise Problem(
            401,
            "unauthorized",
            "a valid API key is required" if key else "this API requires an API key",
            log={"key_id": key_id_of(key) if key else None},
        )
    return tenant
