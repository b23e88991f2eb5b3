"""AWS clients, created once per process and lazily, with timeouts that fit a 30 s API Gateway request.

``AWS_ENDPOINT_URL`` (honoured by boto3 itself) points every client at a local emulator in local mode.
"""

from __future__ import annotations

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


@functools.cache
def _create(service: str) -> Any:
    return boto3.session.Session().client(service, config=_CONFIG)  # type: ignore[call-overload]


class _Clients:
    """``client(service)``: the process-wide client for ``service``, made once even when several threads
    ask at the same moment (``functools.cache`` alone would make one per racing thread and keep the
    last). Tests start afresh with ``client.cache_clear()``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, service: str) -> Any:
        with self._lock:
            return _create(service)

    def cache_clear(self) -> None:
        with self._lock:
            _create.cache_clear()


client = _Clients()
