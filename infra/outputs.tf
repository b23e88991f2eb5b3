output "api_url" {
  description = "Base URL of the HTTP API ($default stage)."
  value       = aws_apigatewayv2_stage.default.invoke_url
}

output "ingest_url" {
  description = "Full URL of POST /ingest (log lines, JSON or NDJSON)."
  value       = "${trimsuffix(aws_apigatewayv2_stage.default.invoke_url, "/")}/ingest"
}

output "events_url" {
  description = "Full URL of POST /events (JSON events, one or an array, or NDJSON)."
  value       = "${trimsuffix(aws_apigatewayv2_stage.default.invoke_url, "/")}/events"
}

output "metrics_namespace" {
  description = "CloudWatch namespace of sluice's own metrics (Powertools EMF) for this stack."
  value       = local.metrics_namespace
}

output "dlq_arn" {
  description = "ARN of the events dead-letter queue (the source of a DLQ redrive)."
  value       = aws_sqs_queue.dlq.arn
}

output "region" {
  description = "Region of the stack (the CLI's deployment path reads it)."
  value       = local.region
}

output "api_id" {
  description = "Id of the HTTP API."
  value       = aws_apigatewayv2_api.http.id
}

output "queue_url" {
  description = "URL of the events queue (QUEUE_URL)."
  value       = aws_sqs_queue.events.url
}

output "dlq_url" {
  description = "URL of the events dead-letter queue."
  value       = aws_sqs_queue.dlq.url
}

output "stream_failures_queue_url" {
  description = "URL of the queue where the stream consumers' failed batches are described."
  value       = aws_sqs_queue.stream_failures.url
}

output "stream_name" {
  description = "Name of the Kinesis stream (STREAM_NAME)."
  value       = aws_kinesis_stream.events.name
}

output "stream_arn" {
  description = "ARN of the Kinesis stream."
  value       = aws_kinesis_stream.events.arn
}

output "table_name" {
  description = "Events table (TABLE_NAME)."
  value       = aws_dynamodb_table.events.name
}

output "rollup_table_name" {
  description = "Per-tenant rollup table (ROLLUP_TABLE_NAME)."
  value       = aws_dynamodb_table.rollup.name
}

output "api_keys_table_name" {
  description = "API keys table (API_KEYS_TABLE_NAME)."
  value       = aws_dynamodb_table.api_keys.name
}

output "tenant_partitions" {
  description = "Default partition key values per tenant (TENANT_PARTITIONS): what readers query when a tenant has no override."
  value       = var.tenant_partitions
}

output "archive_bucket" {
  description = "S3 archive bucket (ARCHIVE_BUCKET)."
  value       = aws_s3_bucket.archive.bucket
}

output "function_names" {
  description = "Lambda function names by role (ingest, authorizer, worker, archiver, rollup)."
  value       = { for k, f in aws_lambda_function.this : k => f.function_name }
}

output "function_arns" {
  description = "Lambda function ARNs by role."
  value       = { for k, f in aws_lambda_function.this : k => f.arn }
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the stack."
  value       = aws_cloudwatch_dashboard.main.dashboard_name
}

output "tenant_reader_role_arn" {
  description = "ARN of the tenant_reader role (read one tenant's items, named by the tenant_id session tag), when tenant_reader_principal_arns is set."
  value       = one(aws_iam_role.tenant_reader[*].arn)
}
