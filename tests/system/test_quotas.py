"""Per-tenant quotas on the local stack (processes, many ingest environments, one emulator table):
a flooding tenant gets 429 with Retry-After and the RateLimit headers, and all environments together
admit no more than its bucket; a quiet tenant is not refused (docs/quotas.md)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from tests.support.localkit import local_stack, post, run_threads

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RATE, BURST = 40, 100


def test_a_flooding_tenant_is_refused_with_429_and_a_quiet_one_is_not(tmp_path: Path) -> None:
    env = {"TENANT_RECORDS_PER_SECOND": str(RATE), "TENANT_RECORDS_BURST": str(BURST)}
    with local_stack(tmp_path, "quotas", extra_env=env) as runtime:
        url = f"{runtime.api_url}/events"
        batch = orjson.dumps([{"n": i} for i in range(10)])
        statuses: Counter[int] = Counter()
        accepted = 0
        throttled_headers: list[dict[str, str]] = []
        lock = threading.Lock()

        # GIVEN a tenant flooding from 8 threads (several ingest environments at once)
        def flood(_: int) -> None:
            nonlocal accepted
            for _ in range(8):
                status, headers, body = post(
                    url, batch, {"content-type": "application/json", "x-tenant-id": "flood"}
                )
                with lock:
                    statuses[status] += 1
                    if status == 202:
                        accepted += body["accepted"]
                    elif status == 429:
                        throttled_headers.append(headers)

        started = time.monotonic()
        run_threads(flood, 8)
        elapsed = time.monotonic() - started
        # THEN it is refused with 429, never 5xx, and what was admitted fits its bucket
        assert statuses[429] > 0 and set(statuses) <= {202, 429}, statuses
        assert accepted <= BURST + RATE * elapsed, (accepted, elapsed)
        headers = throttled_headers[0]
        assert int(headers["retry-after"]) >= 1 and '"records"' in headers["ratelimit-policy"]
        assert headers["ratelimit"].startswith('"records";r=0')
        # AND a quiet tenant next to it is accepted
        status, _, body = post(url, batch, {"content-type": "application/json", "x-tenant-id": "quiet"})
        assert status == 202 and body["accepted"] == 10
