"""The SQS worker: envelopes from the queue into the events table (DynamoDB).

``handler`` is the Lambda entry, ``store`` the boto3 adapter, the rest pure logic."""
