"""Tenant ids: the partition key of storage and a path segment of the archive, so tightly shaped."""

from __future__ import annotations

import re

# Letters, digits, dot, dash and underscore; starts with a letter or digit; at most 64 characters.
# Safe as a DynamoDB key, an S3 prefix (tenant=<id>/) and an IAM LeadingKeys condition value.
# \Z, not $: in Python `$` also matches before a final newline, so "acme\n" passed and its records were
# then refused by the envelope schema in the worker. Anchored on both ends, match(), search() and
# fullmatch() all agree. (fastjsonschema compiles the schema's `$` to \Z, so the schema needs no change.)
TENANT_ID_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


def is_valid_tenant_id(value: object) -> bool:
    """True for a well-shaped tenant id: the whole string, a trailing newline included, must match."""
    return isinstance(value, str) and TENANT_ID_RE.fullmatch(value) is not None
