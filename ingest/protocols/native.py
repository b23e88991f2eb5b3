"""The native protocol: ``POST /events``, ``POST /ingest`` and ``POST /webhooks/{source}`` (docs/api.md).

Its decode side is ``ingest.bodies.parse_body`` (JSON, NDJSON and text into items and per-item errors),
which the service calls. ``encode`` answers an accepted request with ``202`` and the JSON receipt, and any refusal with an
RFC 9457 problem document.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from ingest.problems import PROBLEM_CONTENT_TYPE, Problem
from ingest.protocols import Reply

if TYPE_CHECKING:
    from ingest.service import Receipt

ACCEPTED = 202


def encode(outcome: Receipt | Problem, request_id: str | None = None) -> Reply:
    """The response for a receipt (``202`` with its body) or a problem (``request_id`` is its instance)."""
    if isinstance(outcome, Problem):
        body = orjson.dumps(outcome.to_dict(instance=request_id)).decode()
        return Reply(outcome.status, PROBLEM_CONTENT_TYPE, body, dict(outcome.headers))
    return Reply(ACCEPTED, "application/json", orjson.dumps(outcome.body).decode())
