"""The Lambda authorizer's decision, logging and metrics, with a fake key lookup (no sockets)."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from core.settings import SettingsError
from ingest import authorizer
from ingest.apikeys import ApiKeyStore, generate_key, key_id_of
from tests.conftest import load_event
from tests.support.fakes import LambdaContext

GOOD_KEY = generate_key()
REVOKED_KEY = generate_key()
UNKNOWN_KEY = generate_key()


class FakeKeys:
    """The lookup port: active keys map to tenants; revoked ones are known but answer None."""

    def __init__(self) -> None:
        self.active = {GOOD_KEY: "acme"}
        self.revoked = {REVOKED_KEY}
        self.looked_up: list[str] = []

    def lookup(self, key: str) -> str | None:
        self.looked_up.append(key)
        return None if key in self.revoked else self.active.get(key)


def authorizer_event(authorization: str | None) -> dict[str, Any]:
    """An HTTP API payload 2.0 REQUEST authorizer event (identity source: the Authorization header)."""
    headers = {"content-type": "application/json", "user-agent": "curl/8.5.0"}
    if authorization is not None:
        headers["authorization"] = authorization
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/$default/POST/events",
        "identitySource": [authorization] if authorization is not None else None,
        "routeKey": "POST /events",
        "rawPath": "/events",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {"http": {"method": "POST", "path": "/events"}, "requestId": "r-1"},
    }


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Everything the authorizer's Powertools logger writes, formatted as it is in CloudWatch, at DEBUG."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(authorizer.logger.registered_formatter)
    authorizer.logger.addHandler(handler)
    previous = authorizer.logger.log_level
    authorizer.logger.setLevel(logging.DEBUG)
    yield stream
    authorizer.logger.setLevel(previous)
    logging.getLogger(authorizer.logger.name).removeHandler(handler)


def emitted_metrics(stdout: str) -> list[dict[str, Any]]:
    lines = [orjson.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" in line]


# --- the decision ------------------------------------------------------------------------------------------


def test_good_key_is_authorized_with_tenant_and_key_id_in_context() -> None:
    response = authorizer.authorize(authorizer_event(f"Bearer {GOOD_KEY}"), FakeKeys().lookup)
    assert response == {"isAuthorized": True, "context": {"tenant_id": "acme", "key_id": key_id_of(GOOD_KEY)}}


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_bearer_scheme_is_case_insensitive(scheme: str) -> None:
    assert authorizer.authorize(authorizer_event(f"{scheme} {GOOD_KEY}"), FakeKeys().lookup)["isAuthorized"]


def test_header_name_case_does_not_matter_for_non_gateway_callers() -> None:
    event = authorizer_event(None)
    event["headers"]["Authorization"] = f"Bearer {GOOD_KEY}"
    assert authorizer.authorize(event, FakeKeys().lookup)["isAuthorized"]


def test_identity_source_is_used_when_headers_are_absent() -> None:
    event = authorizer_event(f"Bearer {GOOD_KEY}")
    event["headers"] = None
    assert authorizer.authorize(event, FakeKeys().lookup)["isAuthorized"]


@pytest.mark.parametrize(("key", "reason"), [(REVOKED_KEY, "revoked"), (UNKNOWN_KEY, "unknown")])
def test_revoked_and_unknown_keys_are_denied_after_a_lookup(key: str, reason: str) -> None:
    keys = FakeKeys()
    decision = authorizer.decide(authorizer_event(f"Bearer {key}"), keys.lookup)
    assert decision == authorizer.Decision(False, "unknown_or_revoked_key", key_id=key_id_of(key)), reason
    assert decision.response() == {"isAuthorized": False}
    assert keys.looked_up == [key]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("user", ["acme", "anything", ""])
@pytest.mark.parametrize("scheme", ["Basic", "basic", "BASIC"])
def test_basic_auth_with_the_key_as_password_is_authorized(user: str, scheme: str) -> None:
    # Loki's clients (Promtail, Alloy, python-logging-loki) send Basic auth: the password is the key.
    authorization = basic(user, GOOD_KEY).replace("Basic", scheme, 1)
    decision = authorizer.decide(authorizer_event(authorization), FakeKeys().lookup)
    assert (decision.authorized, decision.tenant_id, decision.key_id) == (True, "acme", key_id_of(GOOD_KEY))


@pytest.mark.parametrize("scheme", ["Basic", "basic"])
def test_basic_auth_with_the_key_as_user_name_and_no_password_is_authorized(scheme: str) -> None:
    # The Segment and RudderStack SDKs send their write key as base64(writeKey:).
    authorization = basic(GOOD_KEY, "").replace("Basic", scheme, 1)
    decision = authorizer.decide(authorizer_event(authorization), FakeKeys().lookup)
    assert (decision.authorized, decision.tenant_id, decision.key_id) == (True, "acme", key_id_of(GOOD_KEY))


def test_basic_auth_prefers_the_password_when_both_parts_are_set() -> None:
    keys = FakeKeys()
    decision = authorizer.decide(authorizer_event(basic(UNKNOWN_KEY, GOOD_KEY)), keys.lookup)
    assert (decision.authorized, keys.looked_up) == (True, [GOOD_KEY])


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (basic("acme", REVOKED_KEY), "unknown_or_revoked_key"),
        (basic("acme", UNKNOWN_KEY), "unknown_or_revoked_key"),
        (basic(REVOKED_KEY, ""), "unknown_or_revoked_key"),  # the Segment form, a revoked key
        (basic("not-a-key", ""), "malformed_credentials"),
        (basic("", ""), "malformed_credentials"),
        (basic("acme", "not-a-key"), "malformed_credentials"),
        ("Basic " + base64.b64encode(GOOD_KEY.encode()).decode(), "malformed_credentials"),  # no colon
        ("Basic !!!notbase64", "malformed_credentials"),
        ("Basic " + base64.b64encode(b"acme:\xff\xfe").decode(), "malformed_credentials"),
    ],
)
def test_basic_auth_with_a_wrong_key_or_form_is_denied(authorization: str, reason: str) -> None:
    decision = authorizer.decide(authorizer_event(authorization), FakeKeys().lookup)
    assert (decision.authorized, decision.reason) == (False, reason)


@pytest.mark.parametrize(
    "authorization",
    [
        GOOD_KEY,  # no scheme
        f"Basic {GOOD_KEY}",
        f"Bearer {GOOD_KEY} extra",
        "Bearer",
        "Bearer not-a-key",
        f"Bearer {GOOD_KEY[:-1]}",
        f"Bearer {GOOD_KEY}=",
        "Bearer slk_" + "é" * 43,
    ],
)
def test_malformed_authorization_is_denied_without_a_lookup(authorization: str) -> None:
    keys = FakeKeys()
    decision = authorizer.decide(authorizer_event(authorization), keys.lookup)
    assert (decision.authorized, decision.reason, decision.key_id) == (False, "malformed_credentials", None)
    assert keys.looked_up == []


@pytest.mark.parametrize("authorization", [None, "", "   "])
def test_missing_authorization_is_denied_as_missing_credentials(authorization: str | None) -> None:
    event = authorizer_event(authorization)
    decision = authorizer.decide(event, FakeKeys().lookup)
    assert (decision.authorized, decision.reason) == (False, "missing_credentials")


@pytest.mark.parametrize("tenant", ["../other", "acme\n"])
def test_a_lookup_returning_an_invalid_tenant_is_denied(tenant: str) -> None:
    decision = authorizer.decide(authorizer_event(f"Bearer {GOOD_KEY}"), lambda _key: tenant)
    assert not decision.authorized


# --- logs and metrics --------------------------------------------------------------------------------------


def test_the_key_never_appears_in_logs_or_metrics_but_its_key_id_does(
    log_output: io.StringIO, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN one request of each outcome, all with keys the test knows
    keys = FakeKeys()
    for authorization in (
        f"Bearer {GOOD_KEY}",
        f"Bearer {REVOKED_KEY}",
        f"Bearer {UNKNOWN_KEY}",
        f"Basic {GOOD_KEY}",
    ):
        authorizer.authorize(authorizer_event(authorization), keys.lookup)
    # WHEN the log and metric output is collected
    logs = log_output.getvalue()
    stdout = capsys.readouterr().out
    # THEN key ids are there (so the capture works) and the secrets are not, anywhere
    assert f'"key_id":"{GOOD_KEY[4:12]}"' in logs
    assert f'"key_id":"{REVOKED_KEY[4:12]}"' in logs
    for key in (GOOD_KEY, REVOKED_KEY, UNKNOWN_KEY):
        secret_part = key[len("slk_") + 8 :]  # everything beyond the public key id
        assert secret_part not in logs
        assert secret_part not in stdout
        # the raw LogRecords too (message, args and every extra field), as any other handler would see them
        assert all(secret_part not in repr(vars(record)) for record in caplog.records)
    assert len(caplog.records) == 4
    records = [orjson.loads(line) for line in logs.splitlines()]
    assert [r.get("reason") for r in records] == [
        None,
        "unknown_or_revoked_key",
        "unknown_or_revoked_key",
        "malformed_credentials",
    ]


def test_each_denial_emits_one_metric_with_its_reason(capsys: pytest.CaptureFixture[str]) -> None:
    keys = FakeKeys()
    authorizer.authorize(authorizer_event(f"Bearer {GOOD_KEY}"), keys.lookup)
    authorizer.authorize(authorizer_event(f"Bearer {UNKNOWN_KEY}"), keys.lookup)
    authorizer.authorize(authorizer_event(None), keys.lookup)
    metrics = emitted_metrics(capsys.readouterr().out)
    assert [(m[authorizer.DENIED_METRIC], m["reason"]) for m in metrics] == [
        ([1.0], "unknown_or_revoked_key"),
        ([1.0], "missing_credentials"),
    ]
    assert all(m["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "sluice-test" for m in metrics)


# --- the handler -----------------------------------------------------------------------------------------


@pytest.fixture
def fake_store(monkeypatch: pytest.MonkeyPatch) -> FakeKeys:
    keys = FakeKeys()
    monkeypatch.setattr(authorizer, "key_store", lambda: keys)
    return keys


def test_lambda_handler_returns_the_simple_response(fake_store: FakeKeys, log_output: io.StringIO) -> None:
    context = LambdaContext(aws_request_id="req-1")
    response = authorizer.lambda_handler(authorizer_event(f"Bearer {GOOD_KEY}"), context)  # type: ignore[arg-type]
    assert response["context"]["tenant_id"] == "acme"
    # the handler's injected Lambda context is in the log; the event (with the header) is not
    assert "req-1" in log_output.getvalue()
    assert GOOD_KEY[12:] not in log_output.getvalue()


def test_the_decision_reads_the_header_of_an_integration_event(fake_store: FakeKeys) -> None:
    # The local API Gateway calls the authorizer with the integration event (headers, no identitySource).
    event = load_event("apigw_http_post_events")
    event["headers"]["authorization"] = f"Bearer {GOOD_KEY}"
    response = authorizer.lambda_handler(event, LambdaContext())  # type: ignore[arg-type]
    assert response == {
        "isAuthorized": True,
        "context": {"tenant_id": "acme", "key_id": key_id_of(GOOD_KEY)},
    }
    event["headers"]["authorization"] = f"Bearer {UNKNOWN_KEY}"
    assert authorizer.lambda_handler(event, LambdaContext()) == {"isAuthorized": False}  # type: ignore[arg-type]


def test_key_store_factory_reads_settings_lazily_and_once(monkeypatch: pytest.MonkeyPatch) -> None:
    authorizer.key_store.cache_clear()
    try:
        monkeypatch.delenv("API_KEYS_TABLE_NAME", raising=False)
        with pytest.raises(SettingsError, match="API_KEYS_TABLE_NAME"):
            authorizer.key_store()
        monkeypatch.setenv("API_KEYS_TABLE_NAME", "sluice-api-keys")
        store = authorizer.key_store()
        assert isinstance(store, ApiKeyStore)
        assert authorizer.key_store() is store
    finally:
        authorizer.key_store.cache_clear()
