"""One AWS client per service, even when threads ask at once."""

from __future__ import annotations

import functools

import pytest


def test_threads_asking_for_a_client_at_once_share_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN client creation slow enough that racing threads overlap (as pollers starting together do)
    import threading
    import time

    from core import aws

    made: list[object] = []

    def slow_create(service: str) -> object:
        time.sleep(0.01)
        made.append(object())
        return made[-1]

    monkeypatch.setattr(aws, "_create", functools.cache(slow_create))
    barrier = threading.Barrier(8)
    got: list[object] = []

    def ask() -> None:
        barrier.wait()
        got.append(aws.client("sqs"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN one client was made, and every thread got it
    assert len(made) == 1 and all(c is made[0] for c in got) and len(got) == 8
