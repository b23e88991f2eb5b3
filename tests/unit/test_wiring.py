"""The wiring shared by Terraform and local mode: AWS advice followed, every handler importable."""

from __future__ import annotations

from core import wiring


def test_wiring_follows_aws_advice() -> None:
    w = wiring.load()
    # AWS: queue visibility timeout at least six times the function timeout.
    assert w.worker.visibility_timeout_seconds >= 6 * w.worker.function_timeout_seconds
    assert w.worker.maximum_concurrency >= 2  # the SQS event source mapping minimum
    assert {c.name for c in w.stream_consumers} == {"archiver", "rollup"}


def test_every_wired_handler_is_a_function_of_the_code() -> None:
    import importlib

    w = wiring.load()
    paths = {**w.handlers, **{c.name: c.handler for c in w.stream_consumers}}
    assert set(paths) == {"ingest", "authorizer", "worker", "archiver", "rollup"}
    for name, dotted in paths.items():
        module, _, attr = dotted.rpartition(".")
        assert callable(getattr(importlib.import_module(module), attr)), name
