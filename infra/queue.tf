# The durable buffer between ingest and the worker, its DLQ, and the queue where the Kinesis event source
# mappings describe the stream batches they gave up on.

resource "aws_sqs_queue" "dlq" {
  name                      = "${local.name}-events-dlq"
  message_retention_seconds = local.wiring.worker.dlq_message_retention_seconds
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "events" {
  name                       = "${local.name}-events"
  visibility_timeout_seconds = local.wiring.worker.visibility_timeout_seconds
  message_retention_seconds  = local.wiring.worker.queue_message_retention_seconds
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = local.wiring.worker.max_receive_count
  })

  lifecycle {
    # AWS guidance for SQS event sources: visibility timeout at least 6x the function timeout, or a
    # message being retried by a throttled/batching poller becomes visible again while in flight.
    precondition {
      condition     = local.wiring.worker.visibility_timeout_seconds >= 6 * local.wiring.worker.function_timeout_seconds
      error_message = "core/wiring.json: worker.visibility_timeout_seconds must be >= 6 x worker.function_timeout_seconds."
    }
  }
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  # local_mode: moto does not report RedriveAllowPolicy back, and the provider would wait forever for it.
  count = var.local_mode ? 0 : 1

  queue_url = aws_sqs_queue.dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.events.arn]
  })
}

resource "aws_sqs_queue" "stream_failures" {
  name                      = "${local.name}-stream-failures"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
}
