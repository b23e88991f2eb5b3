"""Where the ``WEBHOOK_SECRETS`` document comes from: the environment, or Secrets Manager by ARN.

On AWS the document lives in a Secrets Manager secret (``WEBHOOK_SECRETS_ARN``), so it is in neither the
Terraform state nor ``GetFunctionConfiguration``. Each container reads it on the first webhook and again
once ``WEBHOOK_SECRETS_TTL_SECONDS`` have passed, so a rotation (a new version of the secret) takes effect
within the TTL without a deploy. A failed re-read keeps serving the last document (the secrets did not
stop being valid because Secrets Manager did not answer) and tries again on a later request; with no
document at all the webhook is answered 503 with ``Retry-After``. ``WEBHOOK_SECRETS`` (the document
itself) is kept for local mode and dev.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from core import aws
from core.errors import error_code
from core.settings import WebhookSettings
from ingest.problems import Problem

logger = Logger(child=True)

# After a failed re-read, the last document is used this long before the next attempt.
STALE_RETRY_SECONDS = 30.0
RETRY_AFTER_SECONDS = "5"


class SecretsManagerDocument:
    """The ``SecretString`` of one secret, cached for ``ttl_seconds`` (adapter over Secrets Manager)."""

    def __init__(
        self,
        arn: str,
        ttl_seconds: float,
        client: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.arn = arn
        self.ttl_seconds = ttl_seconds
        self._client = client
        self._clock = clock
        self._lock = threading.Lock()
        self._value: str | None = None
        self._expires = 0.0

    def get(self) -> str:
        """The document: cached while fresh, else read again (the last one if that read fails)."""
        with self._lock:
            now = self._clock()
            if self._value is not None and now < self._expires:
                return self._value
            try:
                client = self._client or aws.client("secretsmanager")
                value = str(client.get_secret_value(SecretId=self.arn)["SecretString"])
            except Exception as exc:
                code = error_code(exc)
                if self._value is not None:
                    logger.warning(
                        "webhook secrets re-read failed; using the last ones", extra={"code": code}
                    )
                    self._expires = now + min(self.ttl_seconds, STALE_RETRY_SECONDS)
                    return self._value
                logger.error("webhook secrets cannot be read", extra={"code": code})
                raise Problem(
                    503,
                    "webhook-secrets-unavailable",
                    "webhook verification is unavailable for a moment; retry the delivery",
                    extra={"retry_after": int(RETRY_AFTER_SECONDS)},
                    headers={"Retry-After": RETRY_AFTER_SECONDS},
                ) from None
            self._value, self._expires = value, now + self.ttl_seconds
            return value


@functools.cache
def document_source() -> Callable[[], str]:
    """The function giving the current document, chosen once per container from the settings."""
    settings = WebhookSettings.from_env()
    if settings.webhook_secrets_arn:
        return SecretsManagerDocument(settings.webhook_secrets_arn, settings.webhook_secrets_ttl_seconds).get
    document = settings.webhook_secrets
    return lambda: document


def document() -> str:
    """The current ``WEBHOOK_SECRETS`` JSON document (empty when no webhook source is configured)."""
    return document_source()()
