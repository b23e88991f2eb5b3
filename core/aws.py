"""AWS clients, created once per process and lazily, with timeouts that fit a 30 s API Gateway request.

``AWS_ENDPOINT_URL`` (honoured by boto3 itself) points every client at a local emulator in local mode.

Two kinds of client:

- ``client(service)``: the general client (short timeouts, botocore's "standard" retries) for the
  consumers and the tools.
- ``client_within(service, seconds)``: for a caller that owns a deadline (the ingest publishers). One
  call of such a client never outlasts ``seconds``: botocore's own retries are off (the caller's retry
  loop is the only one) and its connect and read timeouts fit inside the time left. Clients are cached
  per step of a short ladder of timeouts, so a container makes a handful of them, not one per request.
"""

from __future__ import annotations

import bisect
import functools
import threading
from typing import Any

import boto3
from botocore.config import Config

# Short connect/read timeouts: a hung connection must fail fast enough for our own retry loop to try
# again inside the request budget. botocore's "standard" mode retries throttling a few times itself.
_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
    max_pool_connections=32,
    tcp_keepalive=True,
)

# The timeouts a deadline-bound client may have; the time left is rounded DOWN to one of these, so a
# call never outlasts what the caller has. The last step is the general client's read timeout.
TIMEOUT_LADDER: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
CONNECT_TIMEOUT_CAP = 2.0


def timeout_step(seconds: float) -> float:
    """The largest step of ``TIMEOUT_LADDER`` not above ``seconds`` (the smallest step when below all)."""
    i = bisect.bisect_right(TIMEOUT_LADDER, seconds)
    return TIMEOUT_LADDER[max(0, i - 1)]


def bounded_config(seconds: float) -> Config:
    """A botocore config for one attempt of at most about ``seconds``: no retries, timeouts inside it."""
    return Config(
        connect_timeout=min(CONNECT_TIMEOUT_CAP, seconds),
        read_timeout=seconds,
        retries={"mode": "standard", "total_max_attempts": 1},
        max_pool_connections=32,
        tcp_keepalive=True,
    )


@functools.cache
def _create(service: str) -> Any:
    return boto3.session.Session().client(service, config=_CONFIG)  # type: ignore[call-overload]


_made: set[tuple[str, float]] = set()


@functools.cache
def _create_bounded(service: str, seconds: float) -> Any:
    _made.add((service, seconds))
    return boto3.session.Session().client(service, config=bounded_config(seconds))  # type: ignore[call-overload]


class _Clients:
    """``client(service)``: the process-wide client for ``service``, made once even when several threads
    ask at the same moment (``functools.cache`` alone would make one per racing thread and keep the
    last). Tests start afresh with ``client.cache_clear()``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, service: str) -> Any:
        with self._lock:
            return _create(service)

    def within(self, service: str, seconds: float) -> Any:
        """A client for ``service`` whose one call (no botocore retries) fits in ``seconds``."""
        with self._lock:
            return _create_bounded(service, timeout_step(seconds))

    def made(self, service: str) -> list[Any]:
        """Every client made so far for ``service`` (the general one and the deadline-bound ones)."""
        with self._lock:
            general = [_create(service)]
            bounded = [_create_bounded(service, step) for step in TIMEOUT_LADDER if (service, step) in _made]
            return general + bounded

    def cache_clear(self) -> None:
        with self._lock:
            _create.cache_clear()
            _create_bounded.cache_clear()
            _made.clear()


client = _Clients()
client_within = client.within
