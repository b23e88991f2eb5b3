# The event-source wiring of core/wiring.json reaches every queue, stream and mapping unchanged.
# Mock provider: no AWS, no credentials; `command = apply` so that ARNs and ids are (mocked) values.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  env             = "test"
  lambda_zip_path = "tests/fixtures/lambda.zip"
  # Read independently of the module, so a module that stopped reading wiring.json would fail here.
  expected = jsondecode(file("../core/wiring.json"))
}

run "sqs_worker_mapping_follows_wiring" {
  command = apply

  assert {
    condition     = contains(aws_lambda_event_source_mapping.worker.function_response_types, "ReportBatchItemFailures")
    error_message = "The SQS -> worker mapping must report partial batch failures (ReportBatchItemFailures)."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.worker.event_source_arn == aws_sqs_queue.events.arn && aws_lambda_event_source_mapping.worker.function_name == aws_lambda_function.this["worker"].arn
    error_message = "The worker mapping must connect the events queue to the worker function."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.worker.batch_size == var.expected.worker.batch_size
    error_message = "Worker batch_size must come from core/wiring.json."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.worker.maximum_batching_window_in_seconds == var.expected.worker.maximum_batching_window_seconds
    error_message = "Worker batching window must come from core/wiring.json."
  }
  assert {
    condition     = aws_lambda_event_source_mapping.worker.scaling_config[0].maximum_concurrency == var.expected.worker.maximum_concurrency
    error_message = "Worker maximum_concurrency must come from core/wiring.json."
  }
  assert {
    condition     = aws_lambda_function.this["worker"].timeout == var.expected.worker.function_timeout_seconds && aws_lambda_function.this["worker"].handler == var.expected.handlers.worker
    error_message = "Worker timeout and handler must come from core/wiring.json."
  }
}

run "dlq_redrive_and_visibility_follow_wiring" {
  command = apply

  assert {
    condition     = jsondecode(aws_sqs_queue.events.redrive_policy).deadLetterTargetArn == aws_sqs_queue.dlq.arn
    error_message = "The events queue must redrive to the DLQ."
  }
  assert {
    condition     = jsondecode(aws_sqs_queue.events.redrive_policy).maxReceiveCount == var.expected.worker.max_receive_count
    error_message = "maxReceiveCount must come from core/wiring.json."
  }
  assert {
    condition     = aws_sqs_queue.events.visibility_timeout_seconds >= 6 * aws_lambda_function.this["worker"].timeout
    error_message = "Queue visibility timeout must be at least 6x the worker timeout."
  }
  assert {
    condition     = aws_sqs_queue.events.message_retention_seconds == var.expected.worker.queue_message_retention_seconds && aws_sqs_queue.dlq.message_retention_seconds == var.expected.worker.dlq_message_retention_seconds
    error_message = "Queue and DLQ retention must come from core/wiring.json."
  }
  assert {
    condition     = contains(jsondecode(aws_sqs_queue_redrive_allow_policy.dlq[0].redrive_allow_policy).sourceQueueArns, aws_sqs_queue.events.arn)
    error_message = "The DLQ must allow redrive from the events queue only."
  }
}

run "stream_mappings_follow_wiring" {
  command = apply

  assert {
    condition     = toset(keys(aws_lambda_event_source_mapping.stream)) == toset(keys(var.expected.stream_consumers))
    error_message = "There must be one Kinesis mapping per consumer of core/wiring.json."
  }
  assert {
    condition     = alltrue([for k, m in aws_lambda_event_source_mapping.stream : contains(m.function_response_types, "ReportBatchItemFailures")])
    error_message = "Every Kinesis mapping must report partial batch failures."
  }
  assert {
    condition = alltrue([for k, m in aws_lambda_event_source_mapping.stream :
      m.event_source_arn == aws_kinesis_stream.events.arn &&
      m.function_name == aws_lambda_function.this[k].arn &&
      m.batch_size == var.expected.stream_consumers[k].batch_size &&
      m.maximum_batching_window_in_seconds == var.expected.stream_consumers[k].maximum_batching_window_seconds &&
      m.starting_position == var.expected.stream_consumers[k].starting_position &&
      m.bisect_batch_on_function_error == var.expected.stream_consumers[k].bisect_batch_on_function_error &&
      m.maximum_retry_attempts == var.expected.stream_consumers[k].maximum_retry_attempts &&
      m.maximum_record_age_in_seconds == var.expected.stream_consumers[k].maximum_record_age_in_seconds &&
      m.parallelization_factor == var.expected.stream_consumers[k].parallelization_factor
    ])
    error_message = "Every Kinesis mapping must take its settings from core/wiring.json."
  }
  assert {
    condition     = alltrue([for k, m in aws_lambda_event_source_mapping.stream : m.destination_config[0].on_failure[0].destination_arn == aws_sqs_queue.stream_failures.arn])
    error_message = "Every Kinesis mapping must send failed batches to the stream-failures queue."
  }
  assert {
    condition = alltrue([for k, c in var.expected.stream_consumers :
    aws_lambda_function.this[k].handler == c.handler && aws_lambda_function.this[k].timeout == c.function_timeout_seconds])
    error_message = "Consumer handlers and timeouts must come from core/wiring.json."
  }
  assert {
    condition     = aws_kinesis_stream.events.retention_period == var.expected.stream.retention_hours
    error_message = "Stream retention must come from core/wiring.json."
  }
  assert {
    condition     = aws_kinesis_stream.events.stream_mode_details[0].stream_mode == "PROVISIONED" && aws_kinesis_stream.events.shard_count == var.expected.stream.shard_count
    error_message = "The default stream is PROVISIONED with the shard count of core/wiring.json (cheapest idle; prod.tfvars asks for ON_DEMAND)."
  }
}

run "on_demand_stream_has_no_shard_count" {
  command = plan

  variables {
    stream_mode = "ON_DEMAND"
  }

  assert {
    condition     = aws_kinesis_stream.events.stream_mode_details[0].stream_mode == "ON_DEMAND" && aws_kinesis_stream.events.shard_count == null
    error_message = "An ON_DEMAND stream has no shard count."
  }
}

run "provisioned_stream_takes_shard_count_from_wiring" {
  command = plan

  variables {
    stream_mode = "PROVISIONED"
  }

  assert {
    condition     = aws_kinesis_stream.events.shard_count == var.expected.stream.shard_count
    error_message = "A PROVISIONED stream must have the shard count of core/wiring.json."
  }
}

run "short_visibility_timeout_is_refused" {
  command = plan

  variables {
    wiring_file = "tests/fixtures/short-visibility.wiring.json"
  }

  expect_failures = [aws_sqs_queue.events]
}
