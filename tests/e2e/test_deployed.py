"""Against a deployed stack (opt-in): SLUICE_E2E_URL=https://… SLUICE_E2E_API_KEY=slk_… pytest tests/e2e.

What it proves on real AWS: the API answers through API Gateway and the authorizer, a posted event gets a
202 receipt, a bad body gets a problem document, and a key is refused for another tenant.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
import uuid

import orjson
import pytest

URL = os.environ.get("SLUICE_E2E_URL", "").rstrip("/")
KEY = os.environ.get("SLUICE_E2E_API_KEY", "")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not URL, reason="set SLUICE_E2E_URL (and SLUICE_E2E_API_KEY) to test a deployed stack"
    ),
]


def call(
    method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict]:
    hdrs = {
        "content-type": "application/json",
        **({"authorization": f"Bearer {KEY}"} if KEY else {}),
        **(headers or {}),
    }
    request = urllib.request.Request(URL + path, data=body, method=method, headers=hdrs)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, orjson.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"{}")


def test_health() -> None:
    assert call("GET", "/health")[0] == 200


def test_event_is_accepted_with_a_receipt() -> None:
    status, receipt = call("POST", "/events", orjson.dumps({"type": "e2e", "event_id": str(uuid.uuid4())}))
    assert status == 202, receipt
    assert receipt["accepted"] == 1


def test_malformed_body_is_a_problem_document() -> None:
    status, problem = call("POST", "/events", b"{")
    assert status == 400
    assert problem["code"] == "invalid-json"


def test_another_tenant_is_forbidden() -> None:
    if not KEY:
        pytest.skip("needs SLUICE_E2E_API_KEY")
    status, _ = call("POST", "/events", b"{}", {"x-tenant-id": "someone-else-entirely"})
    assert status == 403
