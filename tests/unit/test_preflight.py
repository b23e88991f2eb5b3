"""The concurrency preflight's comparison (infra/scripts/preflight.py): pure, no AWS."""

from __future__ import annotations

import importlib.util
import sys

from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location("preflight", REPO / "infra" / "scripts" / "preflight.py")
assert _spec is not None and _spec.loader is not None
preflight = importlib.util.module_from_spec(_spec)
sys.modules["preflight"] = preflight
_spec.loader.exec_module(preflight)


def test_a_new_account_cannot_take_prods_200_reserved_for_ingest() -> None:
    # GIVEN a new account's quota of 10, all of it unreserved
    verdict = preflight.check(10, 10, {}, {"ingest": 200}, env="prod", region="eu-west-1")
    # THEN it fails, quoting AWS's own error and the exact quota that would fit (200 + 10 unreserved)
    assert not verdict.ok
    assert verdict.quota_needed == 210
    assert "below its minimum value of [10]" in verdict.message
    assert "--desired-value 210" in verdict.message and "L-B99A9384" in verdict.message


def test_other_stacks_reservations_count_against_the_quota() -> None:
    # 1,000 in all, 750 already reserved by other functions of the account
    verdict = preflight.check(1000, 250, {}, {"ingest": 200, "worker": 50})
    assert not verdict.ok and verdict.unreserved_after == 0 and verdict.quota_needed == 1010


def test_this_stacks_current_reservations_are_available_to_reapply() -> None:
    # the stack already reserves 200 for ingest: re-applying the same is fine
    verdict = preflight.check(1000, 800, {"ingest": 200}, {"ingest": 200})
    assert verdict.ok and verdict.unreserved_after == 800


def test_no_reservation_always_fits() -> None:
    verdict = preflight.check(10, 10, {}, {})
    assert verdict.ok and verdict.unreserved_after == 10


def test_exactly_the_minimum_left_unreserved_is_allowed() -> None:
    assert preflight.check(50, 50, {}, {"ingest": 40}).ok
    assert not preflight.check(50, 50, {}, {"ingest": 41}).ok
