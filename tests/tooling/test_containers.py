"""Local execution environments: handler copies load in a fresh process state, and the pool picks\nenvironments as Lambda does."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from local import sources
from tests.conftest import REPO


def test_a_handler_copy_loads_before_its_module_was_ever_imported() -> None:
    # ingest.authorizer defines a dataclass under `from __future__ import annotations`; dataclasses looks
    # the defining module up in sys.modules, so a copy made before any import used to fail.
    code = (
        "import sys; from local.sources import load_container; "
        "assert 'ingest.authorizer' not in sys.modules; "
        "h = load_container('ingest.authorizer.lambda_handler'); "
        "print(callable(h))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_a_trickle_after_a_burst_goes_to_the_environment_used_last(monkeypatch: pytest.MonkeyPatch) -> None:
    # Lambda keeps a steady trickle on one warm environment; rotating it over every environment a burst
    # created would make per-environment state (quota leases, caches) colder than on AWS.
    made: list[int] = []
    burst = threading.Barrier(4)

    def load(_dotted: str) -> Callable[[dict[str, Any], Any], int]:
        number = len(made)
        made.append(number)

        def handler(event: dict[str, Any], _context: Any) -> int:
            if event.get("burst"):
                burst.wait(5)
            return number

        return handler

    monkeypatch.setattr(sources, "load_container", load)
    pool = sources.ContainerPool("tests.handler", 4)
    with ThreadPoolExecutor(4) as callers:
        assert sorted(callers.map(lambda _: pool({"burst": True}, None), range(4))) == [0, 1, 2, 3]
    assert pool.created == 4

    last = pool({}, None)
    assert [pool({}, None) for _ in range(10)] == [last] * 10
    assert pool.created == 4
