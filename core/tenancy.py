"""Tenant ids: the partition key of storage and a path segment of the archive, so tightly shaped."""

from __future__ import annotations

import re

# Letters, digits, dot, dash and underscore; starts with a letter or digit; at most 64 characters.
# Safe as a DynamoDB key, an S3 prefix (tenant=<id>/) and an IAM LeadingKeys condition value.
TENANT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def is_valid_tenant_id(value: object) -> bool:
    return isinstance(value, str) and TENANT_ID_RE.match(value) is not None
