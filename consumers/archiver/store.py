"""The archiver's storage adapter: ``S3Archive`` behind the ``ArchiveWriter`` port of
``consumers.archiver.archive``."""

from __future__ import annotations

from typing import Any

from core import aws


class S3Archive:
    """Puts archive objects into one bucket. Overwrites are the point: keys are deterministic."""

    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("s3")
        return self._client

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType="application/x-ndjson",
            ContentEncoding="gzip",
        )
