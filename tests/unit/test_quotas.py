"""Quota arithmetic (ingest/quotas.py): local token buckets, the shared GCRA bucket, leases across
containers, clock skew and failing open; every clock is injected, nothing sleeps."""

from __future__ import annotations

import math

import pytest

from ingest.quotas import (
    InMemoryQuotaStore,
    Limit,
    QuotaEnforcer,
    QuotaExceeded,
    QuotaPolicy,
    SharedState,
    TokenBucket,
    gcra_available,
    plan_lease,
    rate_limit_headers,
)


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


RECORDS = QuotaPolicy(records=Limit(rate=100, burst=200))


def admitted(enforcer: QuotaEnforcer, tenant: str, records: int) -> bool:
    try:
        enforcer.admit(tenant, {"records": records})
    except QuotaExceeded:
        return False
    return True


# --- local token bucket ----------------------------------------------------------------------------


def test_a_bucket_starts_full_and_refills_at_its_rate_up_to_the_burst() -> None:
    bucket = TokenBucket.full(Limit(10, 20), now=0.0)
    assert bucket.wait(20, 0.0) == 0
    bucket.take(20, 0.0)
    assert bucket.wait(5, 0.0) == pytest.approx(0.5)
    assert bucket.wait(5, 0.5) == 0
    bucket.refill(100.0)
    assert bucket.tokens == 20  # never more than the burst


def test_an_amount_above_the_burst_never_fits() -> None:
    assert math.isinf(TokenBucket.full(Limit(10, 20), 0.0).wait(21, 0.0))


def test_a_clock_going_backwards_neither_refills_nor_goes_negative() -> None:
    bucket = TokenBucket.full(Limit(10, 20), now=100.0)
    bucket.take(20, 100.0)
    bucket.refill(90.0)
    assert (bucket.tokens, bucket.updated) == (0, 100.0)
    assert bucket.wait(10, 101.0) == 0  # refills from the latest time seen, not the earlier one


# --- shared GCRA bucket ---------------------------------------------------------------------------


def test_gcra_is_a_token_bucket() -> None:
    limit = Limit(10, 20)
    assert gcra_available(None, 0.0, limit) == 20
    assert gcra_available(1.0, 0.0, limit) == 10  # 1 s of backlog = 10 tokens spent
    assert gcra_available(5.0, 0.0, limit) == 0
    assert gcra_available(0.0, 50.0, limit) == 20  # idle: full, not more


def test_a_lease_grants_between_need_and_want_all_dimensions_or_nothing() -> None:
    policy = QuotaPolicy(requests=Limit(5, 5), records=Limit(100, 100))
    plan = plan_lease(SharedState(), 0.0, policy, {"requests": 1, "records": 10}, {"records": 500})
    assert plan.granted == {"requests": 1, "records": 100}  # want capped at what the bucket holds
    assert plan.state is not None and plan.state.version == 1
    refused = plan_lease(plan.state, 0.0, policy, {"requests": 1, "records": 10}, {})
    assert refused.state is None and refused.dimension == "records"
    assert refused.retry_after == pytest.approx(0.1)  # 10 records at 100/s


def test_a_need_above_the_burst_can_never_be_granted() -> None:
    plan = plan_lease(SharedState(), 0.0, RECORDS, {"records": 201}, {})
    assert plan.state is None and math.isinf(plan.retry_after)


# --- enforcer: local only ---------------------------------------------------------------------------


def test_without_a_store_one_container_admits_burst_then_rate() -> None:
    clock = Clock()
    enforcer = QuotaEnforcer(RECORDS, clock=clock)
    assert admitted(enforcer, "acme", 200)
    assert not admitted(enforcer, "acme", 1)
    clock.now += 0.5
    assert admitted(enforcer, "acme", 50) and not admitted(enforcer, "acme", 1)


def test_tenants_have_separate_buckets() -> None:
    enforcer = QuotaEnforcer(RECORDS, clock=Clock())
    assert admitted(enforcer, "flood", 200) and not admitted(enforcer, "flood", 1)
    assert admitted(enforcer, "quiet", 200)


def test_unlimited_dimensions_and_policies_admit_everything() -> None:
    enforcer = QuotaEnforcer(QuotaPolicy(), InMemoryQuotaStore(), clock=Clock())
    enforcer.admit("acme", {"records": 10**9, "bytes": 10**12, "requests": 1})
    assert enforcer.counters.store_calls == 0


def test_the_refusal_says_which_quota_and_when_to_retry() -> None:
    enforcer = QuotaEnforcer(RECORDS, clock=Clock())
    enforcer.admit("acme", {"records": 200})
    with pytest.raises(QuotaExceeded) as caught:
        enforcer.admit("acme", {"records": 50})
    throttle = caught.value.throttle
    assert (throttle.dimension, throttle.retry_after, throttle.retry_after_seconds) == ("records", 0.5, 1)
    headers = rate_limit_headers(throttle, caught.value.policy)
    assert headers == {
        "Retry-After": "1",
        "RateLimit-Policy": '"records";q=200;w=2',
        "RateLimit": '"records";r=0;t=1',
    }


def test_headers_name_every_limited_quota_with_its_unit() -> None:
    policy = QuotaPolicy(requests=Limit(10, 10), bytes=Limit(1000, 5000), records=Limit(100, 100))
    enforcer = QuotaEnforcer(policy, clock=Clock())
    with pytest.raises(QuotaExceeded) as caught:
        enforcer.admit("acme", {"bytes": 6000})
    headers = rate_limit_headers(caught.value.throttle, policy)
    assert headers["RateLimit-Policy"] == (
        '"requests";q=10;w=1;qu="requests", "bytes";q=5000;w=5;qu="content-bytes", "records";q=100;w=1'
    )
    assert headers["Retry-After"] == "5"  # larger than the burst: come back after a full window


# --- enforcer: leases of the shared state ------------------------------------------------------------


def test_two_containers_together_never_exceed_burst_plus_rate_times_time() -> None:
    # GIVEN two containers (own local buckets) leasing from one shared store, one clock
    clock, store = Clock(), InMemoryQuotaStore()
    containers = [QuotaEnforcer(RECORDS, store, clock) for _ in range(2)]
    start, total = clock.now, 0
    # WHEN both are flooded with 10-record requests every 10 ms for 5 s
    for step in range(500):
        clock.now = start + step * 0.01
        for enforcer in containers:
            total += 10 * admitted(enforcer, "acme", 10)
        # THEN at every moment, everything admitted fits one bucket of (rate, burst)
        assert total <= RECORDS.records.burst + RECORDS.records.rate * (clock.now - start)
    assert total >= RECORDS.records.rate * 4  # and the quota is actually usable


def test_leases_keep_store_calls_near_one_per_container_per_second() -> None:
    clock, store = Clock(), InMemoryQuotaStore()
    enforcer = QuotaEnforcer(QuotaPolicy(records=Limit(10_000, 10_000)), store, clock)
    start = clock.now
    for step in range(1000):  # 100 requests/s of 10 records for 10 s, well under the quota
        clock.now = start + step * 0.01
        assert admitted(enforcer, "acme", 10)
    assert store.calls <= 10 * 2


def test_a_refused_lease_is_remembered_so_a_flood_does_not_call_the_store_per_request() -> None:
    clock, store = Clock(), InMemoryQuotaStore()
    one, two = (QuotaEnforcer(RECORDS, store, clock) for _ in range(2))
    assert admitted(one, "acme", 200)  # the whole shared burst
    assert not admitted(two, "acme", 10)
    calls = store.calls
    for _ in range(100):
        assert not admitted(two, "acme", 10)
    assert store.calls == calls


def test_clock_skew_between_containers_shifts_the_bucket_by_rate_times_skew_at_most() -> None:
    store, skew = InMemoryQuotaStore(), 0.5
    behind, ahead = Clock(1_000.0), Clock(1_000.0 + skew)
    slow, fast = QuotaEnforcer(RECORDS, store, behind), QuotaEnforcer(RECORDS, store, ahead)
    total = 0
    for step in range(300):
        behind.now, ahead.now = 1_000.0 + step * 0.01, 1_000.0 + skew + step * 0.01
        total += 10 * admitted(slow, "acme", 10) + 10 * admitted(fast, "acme", 10)
        elapsed = step * 0.01
        assert total <= RECORDS.records.burst + RECORDS.records.rate * (elapsed + skew)


def test_when_the_store_is_down_the_local_buckets_decide_and_it_is_counted() -> None:
    clock, store = Clock(), InMemoryQuotaStore()
    store.down = True
    enforcer = QuotaEnforcer(RECORDS, store, clock)
    assert admitted(enforcer, "acme", 200)  # fails open, on the local bucket ...
    assert not admitted(enforcer, "acme", 1)  # ... which still refuses
    assert enforcer.counters.store_errors >= 1
    calls = store.calls
    assert not admitted(enforcer, "acme", 1)
    assert store.calls == calls  # backs off instead of calling a dead store per request


def test_overrides_from_the_store_replace_the_default_per_tenant() -> None:
    clock, store = Clock(), InMemoryQuotaStore()
    store.policies["big"] = {"records": {"rate": 1000, "burst": 5000}}
    enforcer = QuotaEnforcer(RECORDS, store, clock)
    assert enforcer.policy("big").records == Limit(1000, 5000)
    assert enforcer.policy("small").records == RECORDS.records
    assert admitted(enforcer, "big", 5000) and not admitted(enforcer, "small", 201)


def test_an_override_of_only_the_rate_keeps_a_usable_burst() -> None:
    policy = QuotaPolicy().with_overrides({"requests": {"rate": 5}})
    assert policy.requests == Limit(5, 5)
    with pytest.raises(ValueError, match="unknown quota dimension"):
        QuotaPolicy().with_overrides({"events": {"rate": 1}})


def test_local_run_takes_the_default_quotas_on_the_command_line() -> None:
    from local.cli import _quota_env, build_parser

    args = build_parser().parse_args(
        ["run", "--tenant-records-per-second", "50", "--tenant-bytes-burst", "1e6"]
    )
    assert _quota_env(args) == {"TENANT_RECORDS_PER_SECOND": "50.0", "TENANT_BYTES_BURST": "1000000.0"}
    assert _quota_env(build_parser().parse_args(["run"])) == {}


def test_a_slow_sender_holds_a_small_lease_for_several_seconds_instead_of_calling_per_request() -> None:
    clock, store = Clock(), InMemoryQuotaStore()
    policy = QuotaPolicy(requests=Limit(100, 200), records=Limit(1000, 5000))
    enforcer = QuotaEnforcer(policy, store, clock)
    start = clock.now
    for step in range(60):  # one 1-record request per second for a minute
        clock.now = start + step
        enforcer.admit("acme", {"requests": 1})
        enforcer.admit("acme", {"records": 1})
    assert store.calls <= 60 / 5 + 1
