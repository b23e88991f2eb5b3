"""Webhook secrets from Secrets Manager by ARN (moto): read once per TTL, rotation takes effect, a failed
re-read keeps the last secrets, no secrets at all is a 503 with Retry-After."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import orjson
import pytest
from moto import mock_aws

from ingest import webhook_secrets, webhooks
from ingest.problems import Problem
from ingest.webhook_secrets import SecretsManagerDocument
from tests.conftest import REGION

pytestmark = pytest.mark.integration


def config(secret: str) -> str:
    return orjson.dumps({"gh": {"scheme": "github", "tenant_id": "acme", "secrets": [secret]}}).decode()


@pytest.fixture
def secrets() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    webhooks.configured_sources.cache_clear()
    yield
    webhooks.configured_sources.cache_clear()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_ingest_function_reads_its_webhook_sources_from_the_secret(
    secrets: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the document in a secret, and only its ARN in the environment
    arn = secrets.create_secret(Name="sluice-test-webhooks", SecretString=config("s1"))["ARN"]
    monkeypatch.setenv("WEBHOOK_SECRETS_ARN", arn)
    monkeypatch.delenv("WEBHOOK_SECRETS", raising=False)
    # THEN the configured sources are the secret's
    sources = webhooks.configured_sources()
    assert sources["gh"].tenant_id == "acme"
    assert sources["gh"].secrets == (b"s1",)


def test_a_rotation_takes_effect_after_the_ttl_and_not_before(secrets: Any) -> None:
    arn = secrets.create_secret(Name="sluice-test-webhooks", SecretString=config("old"))["ARN"]
    clock = Clock()
    doc = SecretsManagerDocument(arn, ttl_seconds=300, client=secrets, clock=clock)
    assert "old" in doc.get()
    # WHEN the secret is rotated
    secrets.put_secret_value(SecretId=arn, SecretString=config("new"))
    # THEN the container keeps the cached document within the TTL, and reads the new one after it
    clock.now += 299
    assert "old" in doc.get()
    clock.now += 2
    assert "new" in doc.get()


class Failing:
    def __init__(self, real: Any) -> None:
        self.real, self.fail = real, False

    def get_secret_value(self, **kwargs: Any) -> Any:
        if self.fail:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "InternalServiceError", "Message": "x"}}, "GetSecretValue")
        return self.real.get_secret_value(**kwargs)


def test_a_failed_re_read_keeps_the_last_secrets(secrets: Any) -> None:
    arn = secrets.create_secret(Name="sluice-test-webhooks", SecretString=config("kept"))["ARN"]
    client, clock = Failing(secrets), Clock()
    doc = SecretsManagerDocument(arn, ttl_seconds=10, client=client, clock=clock)
    assert "kept" in doc.get()
    client.fail = True
    clock.now += 11
    assert "kept" in doc.get()


def test_no_readable_secret_is_a_503_with_retry_after(secrets: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "WEBHOOK_SECRETS_ARN", f"arn:aws:secretsmanager:{REGION}:123456789012:secret:missing-AbCdEf"
    )
    with pytest.raises(Problem) as caught:
        webhooks.configured_sources()
    assert caught.value.status == 503 and caught.value.headers["Retry-After"]


def test_the_environment_variable_still_works_for_local_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBHOOK_SECRETS_ARN", raising=False)
    monkeypatch.setenv("WEBHOOK_SECRETS", config("local"))
    assert webhook_secrets.document() == config("local")
    assert webhooks.configured_sources()["gh"].tenant_id == "acme"
