locals {
  alarm_actions = var.alarm_sns_topic_arn == null ? [] : [var.alarm_sns_topic_arn]

  # Alarms on the metrics sluice's code emits (Powertools EMF, namespace local.metrics_namespace,
  # dimension service). CloudWatch alarms cannot SEARCH, so the code emits a total beside every
  # per-code family (PermanentFailures beside PermanentFailures_<code>, and so on) and these watch it.
  own_metric_alarms_all = merge(
    {
      worker-permanent-failures = {
        function = "worker", metric = "PermanentFailures", threshold = 0
        what     = "records the worker cannot store (poison): they reach the DLQ after maxReceiveCount"
      }
      worker-throttled-calls = {
        function = "worker", metric = "ThrottledCalls", threshold = var.throttled_calls_alarm_threshold
        what     = "DynamoDB throttled the worker's writes"
      }
      ingest-internal-errors = {
        function = "ingest", metric = "InternalErrors", threshold = 0
        what     = "the ingest function failed on a request (500)"
      }
      ingest-records-rejected = {
        function = "ingest", metric = "RecordsRejected", threshold = var.rejections_alarm_threshold
        what     = "records refused inside accepted requests (RecordsRejected.<reason> says why)"
      }
      ingest-requests-refused = {
        function = "ingest", metric = "RequestsRefused", threshold = var.rejections_alarm_threshold
        what     = "requests answered 4xx (RequestsRefused.<code> says why)"
      }
    },
    { for k in keys(local.stream_consumers) : "${k}-skipped" => {
      function = k, metric = "Skipped", threshold = 0
      what     = "stream records the ${k} skipped as not a valid envelope (Skipped_<code> says why)"
    } },
  )
  own_metric_alarms = { for k, v in local.own_metric_alarms_all : k => v if contains(keys(local.functions), v.function) }

  # Queue depth alarms: any message on these queues is a record the pipeline could not process.
  queue_depth_alarms = {
    dlq             = { queue = aws_sqs_queue.dlq.name, what = "records the worker gave up on (DLQ)" }
    stream_failures = { queue = aws_sqs_queue.stream_failures.name, what = "stream batches a consumer gave up on" }
  }
}

resource "aws_cloudwatch_metric_alarm" "queue_depth" {
  for_each = local.queue_depth_alarms

  alarm_name          = "${local.name}-${replace(each.key, "_", "-")}-not-empty"
  alarm_description   = "${each.value.what}: inspect and redrive."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value.queue }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "own_metric" {
  for_each = local.own_metric_alarms

  alarm_name          = "${local.name}-${each.key}"
  alarm_description   = "sluice ${each.value.metric} above ${each.value.threshold} in 5 minutes: ${each.value.what}."
  namespace           = local.metrics_namespace
  metric_name         = each.value.metric
  dimensions          = { service = local.service_names[each.value.function] }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "worker" {
  for_each = toset(["Errors", "Throttles"])

  alarm_name          = "${local.name}-worker-${lower(each.key)}"
  alarm_description   = "The worker function reports ${each.key}."
  namespace           = "AWS/Lambda"
  metric_name         = each.key
  dimensions          = { FunctionName = aws_lambda_function.this["worker"].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "consumer_iterator_age" {
  for_each = local.stream_consumers

  alarm_name          = "${local.name}-${each.key}-iterator-age"
  alarm_description   = "The ${each.key} consumer lags behind the stream (records risk expiring after ${local.wiring.stream.retention_hours} h)."
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = aws_lambda_function.this[each.key].function_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = var.iterator_age_alarm_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "api_5xx_rate" {
  alarm_name          = "${local.name}-api-5xx-rate"
  alarm_description   = "More than ${var.api_5xx_rate_alarm_percent}% of API requests end in 5xx."
  evaluation_periods  = 1
  threshold           = var.api_5xx_rate_alarm_percent
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "rate"
    expression  = "IF(requests > 0, 100 * errors / requests, 0)"
    label       = "5xx %"
    return_data = true
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "5xx"
      dimensions  = { ApiId = aws_apigatewayv2_api.http.id, Stage = aws_apigatewayv2_stage.default.name }
      stat        = "Sum"
      period      = 300
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApiGateway"
      metric_name = "Count"
      dimensions  = { ApiId = aws_apigatewayv2_api.http.id, Stage = aws_apigatewayv2_stage.default.name }
      stat        = "Sum"
      period      = 300
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "ingest_duration_p99" {
  alarm_name          = "${local.name}-ingest-duration-p99"
  alarm_description   = "The ingest function's p99 duration is above ${var.ingest_p99_alarm_ms} ms."
  namespace           = "AWS/Lambda"
  metric_name         = "Duration"
  dimensions          = { FunctionName = aws_lambda_function.this["ingest"].function_name }
  extended_statistic  = "p99"
  period              = 300
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  threshold           = var.ingest_p99_alarm_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# --- Quotas (ingest/quotas.py) ----------------------------------------------------------------------

# ThrottledRecords carries a tenant dimension (one metric per throttled tenant): the query sums them
# all, and the alarm's Metrics Insights view (GROUP BY tenant) names who.
resource "aws_cloudwatch_metric_alarm" "tenant_throttled" {
  alarm_name          = "${local.name}-tenant-throttled"
  alarm_description   = "A tenant's records were refused over its quota (429) for ${var.throttled_alarm_minutes} minutes in a row: it is flooding, or needs a higher quota (keys quota set). SELECT SUM(ThrottledRecords) ... GROUP BY tenant names it."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = var.throttled_alarm_minutes
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "throttled"
    return_data = true
    period      = 60
    expression  = "SELECT SUM(ThrottledRecords) FROM SCHEMA(\"${local.metrics_namespace}\", service, tenant) WHERE service = '${local.service_names["ingest"]}'"
  }
}

# One partition key value takes about 1,000 WCU/s: a tenant writing faster than its keys allow is
# throttled here (the worker retries, then the queue redelivers). Raise its partitions: `keys partitions set`.
resource "aws_cloudwatch_metric_alarm" "events_write_key_range_throttled" {
  alarm_name          = "${local.name}-events-write-key-range-throttled"
  alarm_description   = "Writes to the events table were throttled by key range (a hot partition key value) for 3 minutes in a row: a tenant needs more partitions (make cost recommends N; keys partitions set)."
  namespace           = "AWS/DynamoDB"
  metric_name         = "WriteKeyRangeThroughputThrottleEvents"
  dimensions          = { TableName = aws_dynamodb_table.events.name }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 3
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# Quotas fail open: while the quota store cannot be reached, each container enforces only its own buckets.
resource "aws_cloudwatch_metric_alarm" "quota_store_errors" {
  alarm_name          = "${local.name}-quota-store-errors"
  alarm_description   = "The ingest function could not reach the quota store (DynamoDB): quotas are enforced per container only."
  namespace           = local.metrics_namespace
  metric_name         = "QuotaStoreErrors"
  dimensions          = { service = local.service_names["ingest"] }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 3
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}
