# One code zip for all five functions (see infra/scripts/build.py for why no layer): the handlers differ.
locals {
  stream_consumers = local.wiring.stream_consumers

  functions_all = merge(
    {
      ingest = {
        handler = local.wiring.handlers.ingest
        timeout = var.ingest_timeout_seconds
      }
      authorizer = {
        handler = local.wiring.handlers.authorizer
        timeout = var.authorizer_timeout_seconds
      }
      worker = {
        handler = local.wiring.handlers.worker
        timeout = local.wiring.worker.function_timeout_seconds
      }
    },
    { for name, c in local.stream_consumers : name => {
      handler = c.handler
      timeout = c.function_timeout_seconds
    } },
  )

  # The authorizer exists only when the API uses it.
  functions = { for k, v in local.functions_all : k => v if k != "authorizer" || var.auth_enabled }

  # Every function gets the same non-secret settings (resource names are not secrets); the webhook
  # secrets go to the ingest function only.
  common_environment = {
    QUEUE_URL                    = aws_sqs_queue.events.url
    STREAM_NAME                  = aws_kinesis_stream.events.name
    TABLE_NAME                   = aws_dynamodb_table.events.name
    ROLLUP_TABLE_NAME            = aws_dynamodb_table.rollup.name
    ARCHIVE_BUCKET               = aws_s3_bucket.archive.bucket
    API_KEYS_TABLE_NAME          = aws_dynamodb_table.api_keys.name
    AUTH_MODE                    = var.auth_enabled ? "api_key" : "none"
    DEFAULT_TENANT               = var.default_tenant
    RETENTION_DAYS               = tostring(var.retention_days)
    REDACT_IP_ADDRESSES          = tostring(var.redact_ip_addresses)
    INGEST_REDACTION             = tostring(var.ingest_redaction)
    SIMULATED_COST_MS_PER_KCHAR  = tostring(var.simulated_cost_ms_per_kchar)
    POWERTOOLS_METRICS_NAMESPACE = local.metrics_namespace
    POWERTOOLS_LOG_LEVEL         = var.log_level
    POWERTOOLS_TRACE_DISABLED    = tostring(!var.xray_enabled)
  }
}

locals {
  # Per-tenant quotas of the ingest function (ingest/quotas.py); overrides: `keys quota set`.
  quota_environment = {
    QUOTA_TABLE_NAME           = aws_dynamodb_table.api_keys.name
    TENANT_RECORDS_PER_SECOND  = tostring(var.tenant_quota.records_per_second)
    TENANT_RECORDS_BURST       = tostring(var.tenant_quota.records_burst)
    TENANT_BYTES_PER_SECOND    = tostring(var.tenant_quota.bytes_per_second)
    TENANT_BYTES_BURST         = tostring(var.tenant_quota.bytes_burst)
    TENANT_REQUESTS_PER_SECOND = tostring(var.tenant_quota.requests_per_second)
    TENANT_REQUESTS_BURST      = tostring(var.tenant_quota.requests_burst)
    # Partition key values per tenant in the events table (core/partitions.py); overrides: `keys partitions set`.
    TENANT_PARTITIONS = tostring(var.tenant_partitions)
  }
}

resource "aws_cloudwatch_log_group" "function" {
  for_each = local.functions

  name              = "/aws/lambda/${local.name}-${each.key}"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "this" {
  for_each = local.functions

  function_name = "${local.name}-${each.key}"
  description   = "sluice ${each.key} (${local.name})"
  role          = aws_iam_role.function[each.key].arn
  runtime       = "python3.12"
  architectures = [var.lambda_architecture]
  handler       = each.value.handler
  timeout       = each.value.timeout
  memory_size   = lookup(var.lambda_memory_mb, each.key, 512)

  filename         = local.lambda_zip
  source_code_hash = fileexists(local.lambda_zip) ? filebase64sha256(local.lambda_zip) : null

  reserved_concurrent_executions = lookup(var.reserved_concurrency, each.key, -1)

  environment {
    variables = merge(
      local.common_environment,
      { POWERTOOLS_SERVICE_NAME = local.service_names[each.key] },
      each.key == "ingest" && var.webhook_secrets != "" ? { WEBHOOK_SECRETS = var.webhook_secrets } : {},
      each.key == "ingest" && var.webhook_secrets_arn != null ? {
        WEBHOOK_SECRETS_ARN         = var.webhook_secrets_arn
        WEBHOOK_SECRETS_TTL_SECONDS = tostring(var.webhook_secrets_ttl_seconds)
      } : {},
      each.key == "ingest" ? local.quota_environment : {},
    )
  }

  tracing_config {
    mode = var.xray_enabled ? "Active" : "PassThrough"
  }

  # The log group exists (with its retention) before the function can write to it, and the role can
  # write to it from the first invocation.
  depends_on = [aws_cloudwatch_log_group.function, aws_iam_role_policy.function]

  lifecycle {
    precondition {
      condition     = fileexists(local.lambda_zip)
      error_message = "Lambda code zip ${local.lambda_zip} not found: run `make build` first (or set lambda_zip_path)."
    }
  }
}

# --- Event source mappings ---------------------------------------------------------------------------

resource "aws_lambda_event_source_mapping" "worker" {
  event_source_arn                   = aws_sqs_queue.events.arn
  function_name                      = aws_lambda_function.this["worker"].arn
  batch_size                         = local.wiring.worker.batch_size
  maximum_batching_window_in_seconds = local.wiring.worker.maximum_batching_window_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = local.wiring.worker.maximum_concurrency
  }

  # AWS checks the role's permissions on the queue when the mapping is created.
  depends_on = [aws_iam_role_policy.function]
}

resource "aws_lambda_event_source_mapping" "stream" {
  for_each = local.stream_consumers

  event_source_arn                   = aws_kinesis_stream.events.arn
  function_name                      = aws_lambda_function.this[each.key].arn
  starting_position                  = each.value.starting_position
  batch_size                         = each.value.batch_size
  maximum_batching_window_in_seconds = each.value.maximum_batching_window_seconds
  bisect_batch_on_function_error     = each.value.bisect_batch_on_function_error
  maximum_retry_attempts             = each.value.maximum_retry_attempts
  maximum_record_age_in_seconds      = each.value.maximum_record_age_in_seconds
  parallelization_factor             = each.value.parallelization_factor
  function_response_types            = ["ReportBatchItemFailures"]

  # Records that exhaust their retries or age out are described (shard, sequence range) on this queue.
  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.stream_failures.arn
    }
  }

  depends_on = [aws_iam_role_policy.function]
}
