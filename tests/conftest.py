"""Fixtures shared by every layer: fake AWS credentials, the shared corpus, sample Lambda events."""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import settings

# Property tests run on a fixed sequence of examples in `make test`, so CI is decided by the code and
# not by a random draw; `make fuzz` runs them on fresh random examples (and many more of them). A case
# it finds becomes an explicit regression test beside the property.
settings.register_profile("default", derandomize=True)
settings.register_profile("fuzz", derandomize=False, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"
EVENTS_DIR = Path(__file__).parent / "support" / "events"
REGION = "us-east-1"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and a fixed region for every test: nothing here may reach real AWS."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "sluice-test")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "sluice-test")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    from core import aws

    aws.client.cache_clear()
    yield
    aws.client.cache_clear()


@pytest.fixture
def corpus() -> Path:
    """``../shared/corpus``; tests that need it skip with a reason where it is absent."""
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS} (it sits beside the repository in CI)")
    return CORPUS


@functools.cache
def _load_event(name: str) -> dict[str, Any]:
    return orjson.loads((EVENTS_DIR / f"{name}.json").read_bytes())  # type: ignore[no-any-return]


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of a sample Lambda event from ``tests/support/events/<name>.json``."""
    return copy.deepcopy(_load_event(name))
