"""RFC 9457 problem documents: every error the API returns, with a stable machine-readable type."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROBLEM_CONTENT_TYPE = "application/problem+json"
# Problem type URIs are relative references resolved against the API (documented in docs/api.md).
TYPE_BASE = "https://sluice.dev/problems/"


@dataclass
class Problem(Exception):
    """An error answer: raising one anywhere in the request path turns into a problem+json response."""

    status: int
    code: str
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    # For the operator's log line only, never the response body (e.g. which webhook check failed).
    log: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.detail)

    @property
    def title(self) -> str:
        return TITLES.get(self.code, self.code.replace("-", " ").capitalize())

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": TYPE_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance:
            doc["instance"] = instance
        doc.update(self.extra)
        return doc


TITLES = {
    "empty-body": "Empty body",
    "invalid-json": "Malformed JSON",
    "invalid-utf8": "Body is not valid UTF-8",
    "invalid-base64": "Body is not valid base64",
    "invalid-gzip": "Body is not valid gzip",
    "invalid-tenant": "Invalid tenant id",
    "body-too-large": "Request body too large",
    "decompressed-too-large": "Decompressed body too large",
    "too-many-records": "Too many records in one request",
    "unsupported-media-type": "Unsupported media type",
    "unsupported-encoding": "Unsupported content encoding",
    "all-items-invalid": "Every item of the request is invalid",
    "tenant-forbidden": "Tenant not allowed for this credential",
    "unauthorized": "Missing or invalid credentials",
    "signature-invalid": "Webhook signature verification failed",
    "throttled": "Too many requests",
    "publish-incomplete": "Records could not be durably queued",
    "internal-error": "Internal error",
    "not-found": "Not found",
    "method-not-allowed": "Method not allowed",
}


@dataclass(frozen=True)
class ItemError:
    """Why one item of a batch was rejected; the rest of the batch is still accepted."""

    index: int
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "code": self.code, "message": self.message}
