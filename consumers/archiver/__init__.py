"""The archiver: the Kinesis stream into S3 as redacted gzip NDJSON, one object per (tenant, hour).

``handler`` is the Lambda entry, ``store`` the boto3 adapter, the rest pure logic."""
