"""The rollup: per-tenant record and byte counts per minute from the Kinesis stream, exact under redelivery.

``handler`` is the Lambda entry, ``store`` the boto3 adapter, the rest pure logic."""
