"""AWS clients, created once per process and lazily, with timeouts that fit a 30 s API Gateway request.

``AWS_ENDPOINT_URL`` (honoured by boto3 itself) points every client at a local emulator in local mode.
"""

from __future__ import annotations

import functools
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
def client(service: str) -> Any:
    """The process-wide client for ``service``. Tests replace it with ``client.cache_clear()``."""
    return boto3.session.Session().client(service, config=_CONFIG)  # type: ignore[call-overload]
