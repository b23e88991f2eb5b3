"""How many partition key values a tenant's items spread over (``core/partitions.py``), as ingest sees it.

Ingest resolves a tenant's N and stamps it on each SQS message (the ``partitions`` message attribute);
the worker computes the key from the message alone. So a message delivered again, or moved back from the
DLQ, lands on the key it would have taken the first time (docs/architecture.md §5 argues the choice).

N is the larger of the tenant's override (``keys partitions set``, stored beside its quota overrides)
and ``TENANT_PARTITIONS`` (``core.partitions.effective_partitions``, as readers compute it), re-read at most once a minute per container and tenant. A cached N can only lag
behind the truth, and the truth only rises: a message stamped with an older N writes under a key every
reader still queries. When the store cannot be read, the last N seen (else the default) applies: any N
up to the current one is safe to write with.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, Protocol

from core.partitions import InvalidPartitions, effective_partitions, parse_partitions
from ingest.quotas import QuotaStoreUnavailable

REFRESH_SECONDS: Final = 60.0


class PartitionsStore(Protocol):
    """Where tenants' partition overrides are read (``ingest.quota_store.DynamoQuotaStore``)."""

    def partitions(self, tenant_id: str) -> int | None:
        """The tenant's override, None when it has none; ``QuotaStoreUnavailable`` when it cannot be read."""
        ...


class TenantPartitions:
    """A container's view of tenants' partition counts: the override or the default, cached."""

    def __init__(
        self,
        default: int,
        store: PartitionsStore | None = None,
        clock: Callable[[], float] = time.monotonic,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self.default = parse_partitions(default)
        self._store = store
        self._clock = clock
        self._refresh = refresh_seconds
        self._cache: dict[str, tuple[int, float]] = {}
        self.store_errors = 0

    def __call__(self, tenant_id: str) -> int:
        """The tenant's N now (the default without a store)."""
        if self._store is None:
            return self.default
        now = self._clock()
        cached = self._cache.get(tenant_id)
        if cached is not None and now - cached[1] < self._refresh:
            return cached[0]
        try:
            n = effective_partitions(self._store.partitions(tenant_id), self.default)
        except InvalidPartitions:
            n = self.default
        except QuotaStoreUnavailable:
            self.store_errors += 1
            n = cached[0] if cached is not None else self.default
        self._cache[tenant_id] = (n, now)
        return n
