"""Tenant ids are matched whole."""

from __future__ import annotations

import pytest

from core import envelope as env
from core.tenancy import is_valid_tenant_id


@pytest.mark.parametrize("tenant", ["acme\n", "\nacme", "acme\r", "ac me", "x" * 65, "", "-acme"])
def test_tenant_ids_are_matched_whole_a_trailing_newline_included(tenant: str) -> None:
    # GIVEN a shape `^...$` accepts with re.match: "acme\n" passed and its records died in the worker
    assert not is_valid_tenant_id(tenant)
    # THEN the envelope schema, compiled as the consumers compile it, refuses the same ids
    record = {
        "v": 1,
        "kind": "event",
        "tenant_id": tenant,
        "event_id": "0190b6d4-1c6e-7a3b-8c5d-2e3f4a5b6c7d",
    }
    record |= {
        "received_at": "2026-11-22T10:15:30.123456Z",
        "type": None,
        "source": {"route": "POST /events"},
    }
    with pytest.raises(env.InvalidEnvelope, match="tenant_id"):
        env.validate({**record, "payload": {}})
    env.validate({**record, "tenant_id": "acme", "payload": {}})
