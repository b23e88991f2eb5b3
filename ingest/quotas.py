"""Per-tenant quotas at ingest: requests/s, bytes/s and records/s, each a rate with a burst.

Two layers, both pure arithmetic over an injected clock (unix seconds):

- **Local buckets** (``TokenBucket``): one per tenant and dimension in each container. They refuse a
  flood that one container sees without any AWS call, and they are what decides alone when the shared
  quota store cannot be reached (quotas fail open; authentication never does).
- **Shared state** (``SharedState``, GCRA): one item per tenant in DynamoDB holds, per dimension, the
  *theoretical arrival time* of the generic cell rate algorithm, which is exactly a token bucket of
  (rate, burst) shared by every container. A container does not ask it per request: it *leases* about
  ``LEASE_SECONDS`` of its own recent demand (``plan_lease``) and admits from the lease locally, so a
  busy container makes about one call per tenant per second, a slow one (whose small lease lasts up to
  ``LEASE_MAX_SECONDS``) one per few seconds, and an idle one none.

Every token a container admits was granted to it by the shared state first, so over any interval
starting from a full bucket all containers together admit at most ``burst + rate * interval``. A lease
left unused expires: its tokens are lost, never admitted twice. Over a window that does not start from a
full bucket, what containers still hold in unexpired leases (at most ``MIN_LEASE_SHARE`` of the burst or
a second of demand each) can come on top. Containers' clocks that
disagree by ``d`` seconds shift the shared bucket by at most ``rate * d`` tokens.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Protocol

DIMENSIONS: Final = ("requests", "bytes", "records")
LEASE_SECONDS: Final = 1.0
# A lease lasts as long as this container's demand takes to use it, within these bounds: a slow sender
# holds a small lease (MIN_LEASE_SHARE of the burst) for a few seconds instead of calling per request.
LEASE_MAX_SECONDS: Final = 5.0
# A lease is at least this share of the burst, so a trickle does not call the store per request.
MIN_LEASE_SHARE: Final = 0.1
# Times are unix seconds as floats (a resolution of about 2e-7 s today): rounding must not refuse a
# request that fits. The slack in tokens is this many seconds of the rate, plus EPSILON.
EPSILON: Final = 1e-6
CLOCK_RESOLUTION_SECONDS: Final = 1e-6


def _slack(limit: Limit) -> float:
    return EPSILON + limit.rate * CLOCK_RESOLUTION_SECONDS


@dataclass(frozen=True)
class Limit:
    """A sustained ``rate`` per second and the ``burst`` admitted at once; a rate <= 0 is no limit."""

    rate: float
    burst: float

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def __post_init__(self) -> None:
        if self.rate > 0 and self.burst < 1:
            raise ValueError("a limited quota needs a burst of at least 1")


UNLIMITED: Final = Limit(0.0, 0.0)


@dataclass(frozen=True)
class QuotaPolicy:
    """A tenant's three limits (decompressed ``bytes``)."""

    requests: Limit = UNLIMITED
    bytes: Limit = UNLIMITED
    records: Limit = UNLIMITED

    def limit(self, dimension: str) -> Limit:
        return getattr(self, dimension)  # type: ignore[no-any-return]

    @property
    def unlimited(self) -> bool:
        return all(self.limit(d).unlimited for d in DIMENSIONS)

    def with_overrides(self, overrides: Mapping[str, Mapping[str, float]]) -> QuotaPolicy:
        """This policy with some limits replaced: ``{"records": {"rate": 500, "burst": 2000}}``."""
        changes: dict[str, Limit] = {}
        for dimension, values in overrides.items():
            if dimension not in DIMENSIONS:
                raise ValueError(f"unknown quota dimension {dimension!r}; use one of {', '.join(DIMENSIONS)}")
            base = self.limit(dimension)
            rate = float(values.get("rate", base.rate))
            burst = float(values.get("burst", base.burst if base.burst >= 1 else max(rate, 1.0)))
            changes[dimension] = Limit(rate, burst)
        return replace(self, **changes)

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {d: {"rate": self.limit(d).rate, "burst": self.limit(d).burst} for d in DIMENSIONS}


# --- local token bucket -----------------------------------------------------------------------------


@dataclass
class TokenBucket:
    """A token bucket of ``limit``, full at creation; ``now`` may go backwards (clock skew): no refill."""

    limit: Limit
    tokens: float
    updated: float

    @classmethod
    def full(cls, limit: Limit, now: float) -> TokenBucket:
        return cls(limit, limit.burst, now)

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.limit.burst, self.tokens + (now - self.updated) * self.limit.rate)
            self.updated = now

    def wait(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` tokens are there (0: now; ``inf``: never, the amount exceeds the burst)."""
        if self.limit.unlimited:
            return 0.0
        self.refill(now)
        if amount <= self.tokens + _slack(self.limit):
            return 0.0
        if amount > self.limit.burst:
            return math.inf
        return (amount - self.tokens) / self.limit.rate

    def take(self, amount: float, now: float) -> None:
        if not self.limit.unlimited:
            self.refill(now)
            self.tokens -= amount


# --- shared state: GCRA ------------------------------------------------------------------------------


def gcra_available(tat: float | None, now: float, limit: Limit) -> float:
    """Tokens the shared bucket holds at ``now`` given its theoretical arrival time ``tat``."""
    if tat is None or tat <= now:
        return limit.burst
    return max(0.0, limit.burst - (tat - now) * limit.rate)


def gcra_after(tat: float | None, now: float, amount: float, limit: Limit) -> float:
    """The theoretical arrival time once ``amount`` tokens are taken at ``now``."""
    start = now if tat is None else max(tat, now)
    return start + amount / limit.rate


@dataclass(frozen=True)
class SharedState:
    """A tenant's item in the quota store: a theoretical arrival time per limited dimension."""

    tats: Mapping[str, float] = field(default_factory=dict)
    version: int = 0


@dataclass(frozen=True)
class LeasePlan:
    """What to write back (``state``) and what it grants, or why nothing can be granted."""

    granted: Mapping[str, float]
    state: SharedState | None  # None: refused, nothing to write
    retry_after: float = 0.0
    dimension: str | None = None  # the dimension that refused


def plan_lease(
    state: SharedState,
    now: float,
    policy: QuotaPolicy,
    need: Mapping[str, float],
    want: Mapping[str, float],
) -> LeasePlan:
    """Grant each dimension between ``need`` and ``want`` tokens from the shared bucket, all or nothing.

    The whole ``need`` must fit in every dimension or nothing is granted; beyond it, each dimension gets
    as much of ``want`` as its bucket holds.
    """
    granted: dict[str, float] = {}
    tats = dict(state.tats)
    for dimension in DIMENSIONS:
        limit = policy.limit(dimension)
        wanted = max(need.get(dimension, 0.0), want.get(dimension, 0.0))
        if limit.unlimited or wanted <= 0:
            continue
        available = gcra_available(tats.get(dimension), now, limit)
        needed = need.get(dimension, 0.0)
        if needed > available + _slack(limit):
            wait = math.inf if needed > limit.burst else (needed - available) / limit.rate
            return LeasePlan({}, None, wait, dimension)
        granted[dimension] = max(needed, min(wanted, available))
        tats[dimension] = gcra_after(tats.get(dimension), now, granted[dimension], limit)
    return LeasePlan(granted, SharedState(tats, state.version + 1))


# --- the port to the shared state ------------------------------------------------------------------


class QuotaStoreUnavailable(Exception):
    """The quota store could not be reached or kept conflicting: decide on the local buckets."""


class QuotaStorePort(Protocol):
    """The shared quota state and the per-tenant overrides (``ingest.quota_store`` is the DynamoDB one)."""

    def lease(
        self,
        tenant_id: str,
        now: float,
        policy: QuotaPolicy,
        need: Mapping[str, float],
        want: Mapping[str, float],
    ) -> LeasePlan: ...

    def overrides(self, tenant_id: str) -> Mapping[str, Mapping[str, float]]: ...


class InMemoryQuotaStore:
    """The shared state in a dict: for tests and for a single process; counts its calls."""

    def __init__(self) -> None:
        self.states: dict[str, SharedState] = {}
        self.policies: dict[str, dict[str, dict[str, float]]] = {}
        self.calls = 0
        self.down = False

    def lease(
        self,
        tenant_id: str,
        now: float,
        policy: QuotaPolicy,
        need: Mapping[str, float],
        want: Mapping[str, float],
    ) -> LeasePlan:
        self.calls += 1
        if self.down:
            raise QuotaStoreUnavailable("in-memory store marked down")
        plan = plan_lease(self.states.get(tenant_id, SharedState()), now, policy, need, want)
        if plan.state is not None:
            self.states[tenant_id] = plan.state
        return plan

    def overrides(self, tenant_id: str) -> Mapping[str, Mapping[str, float]]:
        if self.down:
            raise QuotaStoreUnavailable("in-memory store marked down")
        return self.policies.get(tenant_id, {})


# --- the enforcer: one per container ---------------------------------------------------------------


@dataclass(frozen=True)
class Throttle:
    """Why a request is refused: the dimension, its limit, and when to retry."""

    dimension: str
    limit: Limit
    retry_after: float  # seconds; inf when the request alone exceeds the burst

    @property
    def retry_after_seconds(self) -> int:
        """Whole seconds for ``Retry-After`` (at least 1; a request larger than the burst: the window)."""
        if math.isinf(self.retry_after):
            return max(1, math.ceil(self.limit.burst / self.limit.rate))
        return max(1, math.ceil(self.retry_after))


class QuotaExceeded(Exception):
    """Raised by ``QuotaEnforcer.admit`` when a tenant is over a quota."""

    def __init__(self, throttle: Throttle, policy: QuotaPolicy) -> None:
        super().__init__(f"{throttle.dimension} quota exceeded")
        self.throttle = throttle
        self.policy = policy


@dataclass
class _Lease:
    remaining: float = 0.0
    expires: float = -math.inf
    used: float = 0.0  # admitted from leases since ``since``: the demand the next lease is sized on
    since: float = 0.0


@dataclass
class _Tenant:
    policy: QuotaPolicy
    policy_expires: float
    buckets: dict[str, TokenBucket]
    leases: dict[str, _Lease]
    refused_until: float = -math.inf
    refusal: Throttle | None = None


@dataclass
class QuotaCounters:
    """What the handler turns into metrics: store errors (fail-open decisions) and store calls."""

    store_errors: int = 0
    store_calls: int = 0


class QuotaEnforcer:
    """Admits or refuses a tenant's request step by step, on local buckets and leases of the shared state.

    ``admit(tenant, {"requests": 1})`` before the body is read, then ``{"bytes": n}`` as soon as a size
    is known, then ``{"records": n}`` before envelopes are built: each step raises ``QuotaExceeded`` (the
    tokens of earlier steps stay spent: a refused request still counted as a request).
    """

    POLICY_TTL_SECONDS: Final = 60.0
    STORE_BACKOFF_SECONDS: Final = 1.0

    def __init__(
        self,
        default: QuotaPolicy,
        store: QuotaStorePort | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.default = default
        self.store = store
        self.clock = clock or time.time
        self.counters = QuotaCounters()
        self._tenants: dict[str, _Tenant] = {}
        self._store_retry_at = -math.inf

    def policy(self, tenant_id: str) -> QuotaPolicy:
        """The tenant's policy: the default with its overrides (re-read every ``POLICY_TTL_SECONDS``)."""
        return self._tenant(tenant_id, self.clock()).policy

    def _tenant(self, tenant_id: str, now: float) -> _Tenant:
        tenant = self._tenants.get(tenant_id)
        if tenant is not None and now < tenant.policy_expires:
            return tenant
        policy = self._read_policy(tenant_id, now)
        if tenant is None or tenant.policy != policy:
            buckets = {d: TokenBucket.full(policy.limit(d), now) for d in DIMENSIONS}
            tenant = _Tenant(
                policy, now + self.POLICY_TTL_SECONDS, buckets, {d: _Lease() for d in DIMENSIONS}
            )
            self._tenants[tenant_id] = tenant
        else:
            tenant.policy_expires = now + self.POLICY_TTL_SECONDS
        return tenant

    def _read_policy(self, tenant_id: str, now: float) -> QuotaPolicy:
        if self.store is None or now < self._store_retry_at:
            return self.default
        try:
            overrides = self.store.overrides(tenant_id)
        except QuotaStoreUnavailable:
            self._store_failed(now)
            return self.default
        return self.default.with_overrides(overrides) if overrides else self.default

    def _store_failed(self, now: float) -> None:
        self.counters.store_errors += 1
        self._store_retry_at = now + self.STORE_BACKOFF_SECONDS

    def admit(self, tenant_id: str, amounts: Mapping[str, float]) -> None:
        """Take ``amounts`` (dimension -> tokens) for ``tenant_id`` or raise ``QuotaExceeded``."""
        now = self.clock()
        tenant = self._tenant(tenant_id, now)
        policy = tenant.policy
        wanted = {d: float(n) for d, n in amounts.items() if n > 0 and not policy.limit(d).unlimited}
        if not wanted:
            return
        if now < tenant.refused_until and tenant.refusal is not None:
            raise QuotaExceeded(replace(tenant.refusal, retry_after=tenant.refused_until - now), policy)
        for dimension, amount in wanted.items():
            wait = tenant.buckets[dimension].wait(amount, now)
            if wait > 0:
                raise QuotaExceeded(Throttle(dimension, policy.limit(dimension), wait), policy)
        if self.store is not None:
            self._lease(tenant_id, tenant, wanted, now)
        for dimension, amount in wanted.items():
            tenant.buckets[dimension].take(amount, now)

    def _lease(self, tenant_id: str, tenant: _Tenant, wanted: Mapping[str, float], now: float) -> None:
        leases = tenant.leases
        for lease in leases.values():
            if now >= lease.expires:
                lease.remaining = 0.0
        short = {d: n - leases[d].remaining for d, n in wanted.items() if n > leases[d].remaining + EPSILON}
        if short and now >= self._store_retry_at:
            want = {d: self._lease_size(tenant.policy.limit(d), leases[d], now) for d in DIMENSIONS}
            assert self.store is not None
            self.counters.store_calls += 1
            try:
                plan = self.store.lease(tenant_id, now, tenant.policy, short, want)
            except QuotaStoreUnavailable:
                self._store_failed(now)
                return  # fail open: the local buckets alone decided
            if plan.state is None:
                assert plan.dimension is not None
                refusal = Throttle(plan.dimension, tenant.policy.limit(plan.dimension), plan.retry_after)
                if not math.isinf(plan.retry_after):
                    # Held for at least a lease period (the Retry-After clients are told is whole seconds
                    # anyway), so a tenant over its quota costs about one store call per container per
                    # second, however fast it sends.
                    tenant.refused_until = now + max(plan.retry_after, LEASE_SECONDS)
                    tenant.refusal = refusal
                raise QuotaExceeded(refusal, tenant.policy)
            for dimension, amount in plan.granted.items():
                lease = leases[dimension]
                rate = self._demand(lease, now)
                lease.remaining += amount
                lifetime = lease.remaining / rate if rate > 0 else LEASE_MAX_SECONDS
                lease.expires = now + min(LEASE_MAX_SECONDS, max(LEASE_SECONDS, lifetime))
                lease.used, lease.since = 0.0, now
        elif short:
            return  # the store is backing off after a failure: the local buckets alone decided
        for dimension, amount in wanted.items():
            leases[dimension].remaining -= amount
            leases[dimension].used += amount

    @staticmethod
    def _demand(lease: _Lease, now: float) -> float:
        """Tokens per second this container admitted of a dimension since its last lease."""
        return lease.used / max(now - lease.since, LEASE_SECONDS / 10)

    def _lease_size(self, limit: Limit, lease: _Lease, now: float) -> float:
        """About ``LEASE_SECONDS`` of this container's recent demand, within the burst."""
        if limit.unlimited:
            return 0.0
        demand = self._demand(lease, now) * LEASE_SECONDS
        return min(limit.burst, max(demand, limit.burst * MIN_LEASE_SHARE))


def rate_limit_headers(throttle: Throttle, policy: QuotaPolicy) -> dict[str, str]:
    """``Retry-After`` and the IETF ``RateLimit-Policy``/``RateLimit`` fields
    (draft-ietf-httpapi-ratelimit-headers: ``"<name>";q=<quota>;w=<window>`` and ``"<name>";r=<remaining>;t=<reset>``).

    The policy names the dimension that refused; its quota is the burst over the window that refills it.
    """
    retry = throttle.retry_after_seconds
    policies = []
    for dimension in DIMENSIONS:
        limit = policy.limit(dimension)
        if limit.unlimited:
            continue
        window = max(1, math.ceil(limit.burst / limit.rate))
        unit = {"requests": ';qu="requests"', "bytes": ';qu="content-bytes"'}.get(dimension, "")
        policies.append(f'"{dimension}";q={int(limit.burst)};w={window}{unit}')
    return {
        "Retry-After": str(retry),
        "RateLimit-Policy": ", ".join(policies),
        "RateLimit": f'"{throttle.dimension}";r=0;t={retry}',
    }


def policy_from_settings(settings: Any) -> QuotaPolicy:
    """The default policy from ``IngestSettings`` (``TENANT_*_PER_SECOND`` and ``TENANT_*_BURST``)."""

    def limit(rate: float, burst: float) -> Limit:
        return Limit(rate, burst if burst > 0 else max(rate, 1.0)) if rate > 0 else UNLIMITED

    return QuotaPolicy(
        requests=limit(settings.tenant_requests_per_second, settings.tenant_requests_burst),
        bytes=limit(settings.tenant_bytes_per_second, settings.tenant_bytes_burst),
        records=limit(settings.tenant_records_per_second, settings.tenant_records_burst),
    )
