# Alarms watch the failure paths and notify the optional SNS topic.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  env                 = "test"
  lambda_zip_path     = "tests/fixtures/lambda.zip"
  alarm_sns_topic_arn = "arn:aws:sns:eu-west-1:123456789012:oncall"
}

run "failure_paths_have_alarms" {
  command = apply

  assert {
    condition = (aws_cloudwatch_metric_alarm.queue_depth["dlq"].dimensions.QueueName == aws_sqs_queue.dlq.name &&
      aws_cloudwatch_metric_alarm.queue_depth["stream_failures"].dimensions.QueueName == aws_sqs_queue.stream_failures.name &&
    alltrue([for a in aws_cloudwatch_metric_alarm.queue_depth : a.metric_name == "ApproximateNumberOfMessagesVisible" && a.threshold == 0 && a.comparison_operator == "GreaterThanThreshold"]))
    error_message = "The DLQ and the stream-failures queue must alarm on any visible message."
  }
  assert {
    condition     = toset(keys(aws_cloudwatch_metric_alarm.worker)) == toset(["Errors", "Throttles"]) && alltrue([for a in aws_cloudwatch_metric_alarm.worker : a.dimensions.FunctionName == aws_lambda_function.this["worker"].function_name])
    error_message = "The worker must alarm on Errors and Throttles."
  }
  assert {
    condition     = alltrue([for k, a in aws_cloudwatch_metric_alarm.consumer_iterator_age : a.metric_name == "IteratorAge" && a.dimensions.FunctionName == aws_lambda_function.this[k].function_name]) && length(aws_cloudwatch_metric_alarm.consumer_iterator_age) == length(aws_lambda_event_source_mapping.stream)
    error_message = "Every stream consumer must alarm on its iterator age."
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.ingest_duration_p99.extended_statistic == "p99" && aws_cloudwatch_metric_alarm.ingest_duration_p99.dimensions.FunctionName == aws_lambda_function.this["ingest"].function_name
    error_message = "The ingest function must alarm on its p99 duration."
  }
  assert {
    condition     = anytrue([for q in aws_cloudwatch_metric_alarm.api_5xx_rate.metric_query : q.return_data == true && try(strcontains(q.expression, "errors / requests"), false)])
    error_message = "The API must alarm on its 5xx rate (5xx / Count)."
  }
  assert {
    condition     = anytrue([for q in aws_cloudwatch_metric_alarm.tenant_throttled.metric_query : strcontains(q.expression, "SUM(ThrottledRecords)") && strcontains(q.expression, "tenant")]) && aws_cloudwatch_metric_alarm.quota_store_errors.metric_name == "QuotaStoreErrors"
    error_message = "Tenants throttled over their quota, and a quota store that cannot be reached, must alarm."
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.events_write_key_range_throttled.namespace == "AWS/DynamoDB" && aws_cloudwatch_metric_alarm.events_write_key_range_throttled.metric_name == "WriteKeyRangeThroughputThrottleEvents" && aws_cloudwatch_metric_alarm.events_write_key_range_throttled.dimensions.TableName == aws_dynamodb_table.events.name
    error_message = "Writes to the events table throttled by key range (a tenant outgrowing its partitions) must alarm."
  }
  assert {
    condition = alltrue([for a in concat(values(aws_cloudwatch_metric_alarm.queue_depth), values(aws_cloudwatch_metric_alarm.worker), values(aws_cloudwatch_metric_alarm.consumer_iterator_age), values(aws_cloudwatch_metric_alarm.own_metric), [aws_cloudwatch_metric_alarm.api_5xx_rate, aws_cloudwatch_metric_alarm.ingest_duration_p99, aws_cloudwatch_metric_alarm.tenant_throttled, aws_cloudwatch_metric_alarm.quota_store_errors, aws_cloudwatch_metric_alarm.events_write_key_range_throttled]) :
    a.alarm_actions == toset(["arn:aws:sns:eu-west-1:123456789012:oncall"])])
    error_message = "Every alarm must notify the configured SNS topic."
  }
}

run "names_carry_prefix_and_env" {
  command = apply

  variables {
    name_prefix = "acme"
    env         = "stage2"
  }

  assert {
    condition = (alltrue([for f in aws_lambda_function.this : startswith(f.function_name, "acme-stage2-")]) &&
      startswith(aws_sqs_queue.events.name, "acme-stage2-") && startswith(aws_dynamodb_table.events.name, "acme-stage2-") &&
    startswith(aws_s3_bucket.archive.bucket, "acme-stage2-") && startswith(aws_kinesis_stream.events.name, "acme-stage2-"))
    error_message = "Resource names must derive from name_prefix and env so stacks do not collide."
  }
}
