"""The concurrency preflight's comparison (infra/scripts/preflight.py): pure, no AWS."""

from __future__ import annotations

import importlib.util
import sys

import pytest

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


class FakeLambda:
    """GetAccountSettings and GetFunctionConfiguration's concurrency, as a new account answers them."""

    class exceptions:
        class ResourceNotFoundException(Exception):
            pass

    def __init__(self, quota: int, unreserved: int, reserved: dict[str, int]) -> None:
        self.quota, self.unreserved, self.reserved = quota, unreserved, reserved

    def get_account_settings(self) -> dict[str, object]:
        return {
            "AccountLimit": {
                "ConcurrentExecutions": self.quota,
                "UnreservedConcurrentExecutions": self.unreserved,
            }
        }

    def get_function_concurrency(self, FunctionName: str) -> dict[str, int]:
        if FunctionName not in self.reserved:
            raise self.exceptions.ResourceNotFoundException(FunctionName)
        return {"ReservedConcurrentExecutions": self.reserved[FunctionName]}


def test_tf_sh_passes_what_terraform_console_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3

    # GIVEN what `terraform console` prints for prod.tfvars, and an account with a quota of 50
    console = '"{\\"env\\":\\"prod\\",\\"name\\":\\"sluice-prod\\",\\"region\\":\\"eu-west-1\\",\\"reserved\\":{\\"ingest\\":200}}"\n'
    monkeypatch.setattr(boto3, "client", lambda *a, **k: FakeLambda(50, 50, {}))
    # THEN the preflight fails with the quota to request
    assert preflight.main(["--terraform-console", console]) == 1
    err = capsys.readouterr().err
    assert "ENV=prod reserves 200" in err and "--desired-value 210" in err and "eu-west-1" in err
    # AND passes once the stack already holds its reservation in an account of 1,000
    monkeypatch.setattr(boto3, "client", lambda *a, **k: FakeLambda(1000, 800, {"sluice-prod-ingest": 200}))
    assert preflight.main(["--terraform-console", console]) == 0
    assert "ok: ENV=prod reserves 200" in capsys.readouterr().out
