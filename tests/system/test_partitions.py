"""A partitioned tenant on the local stack: the stamp ingest puts on each SQS message survives the emulated
queue and event source (as Lambda's SQS event carries it), and the CLI reads the tenant back whole.

Raising N on a live tenant, redelivery and redrive are proven in-process (tests/integration/test_partitions.py);
this checks the processes and the emulator between the two handlers."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import orjson
import pytest

from core.partitions import read_keys
from local.cli import main
from tests.support.localkit import inspector, local_stack, post, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(args))
    return code, out.getvalue()


def test_a_tenant_with_four_partitions_is_written_over_its_keys_and_read_back_whole(tmp_path: Path) -> None:
    with local_stack(tmp_path, "parts") as runtime:
        assert runtime.stack is not None
        state = ["--state-dir", str(tmp_path / "state")]
        # GIVEN tenant big with 4 partitions, set before its first request; tenant small left at 1
        code, out = cli(*state, "keys", "partitions", "set", "--tenant", "big", "4")
        assert code == 0 and "big#3" in out, out
        # WHEN both post
        big: list[str] = []
        for n in range(4):
            body = orjson.dumps([{"type": "tick", "batch": n, "i": i} for i in range(25)])
            status, _, receipt = post(
                f"{runtime.api_url}/events", body, {"x-tenant-id": "big", "content-type": "application/json"}
            )
            assert status == 202, receipt
            big += receipt["event_ids"]
        status, _, receipt = post(
            f"{runtime.api_url}/events",
            b'[{"n":1},{"n":2}]',
            {"x-tenant-id": "small", "content-type": "application/json"},
        )
        assert status == 202, receipt
        small = receipt["event_ids"]
        probe = inspector(runtime)
        assert wait_for(
            lambda: probe.count_stored("big") == 100 and probe.count_stored("small") == 2, timeout=180
        )
        # THEN big's items are spread over big#0..3, small's are under small exactly
        raw = {i["tenant_id"]["S"] for i in probe.stored_items()}
        assert raw - {"small"} <= set(read_keys("big", 4)) - {"big"} and len(raw - {"small"}) >= 3, raw
        # AND the CLI lists big's 100 newest first, and gets any of them
        code, out = cli(*state, "--json", "events", "list", "--tenant", "big", "--limit", "100")
        listed = [orjson.loads(line) for line in out.splitlines()]
        assert code == 0 and [r["event_id"] for r in listed] == sorted(big, reverse=True)
        assert {r["tenant_id"] for r in listed} == {"big"}
        code, out = cli(*state, "events", "get", "--tenant", "big", big[37])
        assert code == 0 and big[37] in out
        code, out = cli(*state, "--json", "events", "list", "--tenant", "small")
        assert [orjson.loads(line)["event_id"] for line in out.splitlines()] == sorted(small, reverse=True)
