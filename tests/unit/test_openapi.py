"""The published OpenAPI document is valid, covers every route, and describes what the handler answers."""

from __future__ import annotations

import jsonschema
import orjson
import pytest
from openapi_spec_validator import validate

from core import wiring
from core.settings import IngestSettings
from ingest import handler
from ingest.service import IngestService
from tests.support.fakes import LambdaContext, MemorySink, http_event

DOC = orjson.loads(handler.OPENAPI_PATH.read_bytes())


def check(body: str, name: str) -> None:
    """Validate against a component schema, its refs resolved within the document."""
    jsonschema.validate(
        orjson.loads(body), {"$ref": f"#/components/schemas/{name}", "components": DOC["components"]}
    )


def test_document_is_valid_openapi() -> None:
    validate(DOC)


def test_every_route_is_documented() -> None:
    documented = {f"{method.upper()} {path}" for path, ops in DOC["paths"].items() for method in ops}
    assert documented == {route.key for route in wiring.load().routes}


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    svc = IngestService(
        IngestSettings.from_env({"QUEUE_URL": "q", "STREAM_NAME": "s"}), [MemorySink("a"), MemorySink("b")]
    )
    monkeypatch.setattr(handler, "service", lambda: svc)


@pytest.mark.usefixtures("service")
def test_receipts_and_problems_match_their_schemas() -> None:
    ok = handler.lambda_handler(http_event("POST /events", '[{"a":1}, 5]'), LambdaContext())
    assert ok["statusCode"] == 202
    check(ok["body"], "Receipt")
    bad = handler.lambda_handler(http_event("POST /events", "[5]"), LambdaContext())
    assert bad["statusCode"] == 422
    check(bad["body"], "Problem")
