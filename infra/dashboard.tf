locals {
  fn = { for k, f in aws_lambda_function.this : k => f.function_name }

  dashboard_widgets = [
    {
      title   = "API requests and errors"
      metrics = [for m in ["Count", "4xx", "5xx"] : ["AWS/ApiGateway", m, "ApiId", aws_apigatewayv2_api.http.id, "Stage", "$default", { stat = "Sum" }]]
    },
    {
      title   = "API latency (p50/p99)"
      metrics = [for s in ["p50", "p99"] : ["AWS/ApiGateway", "Latency", "ApiId", aws_apigatewayv2_api.http.id, "Stage", "$default", { stat = s }]]
    },
    {
      title   = "Lambda duration p99"
      metrics = [for k, name in local.fn : ["AWS/Lambda", "Duration", "FunctionName", name, { stat = "p99", label = k }]]
    },
    {
      title   = "Lambda errors and throttles"
      metrics = concat([for k, name in local.fn : ["AWS/Lambda", "Errors", "FunctionName", name, { stat = "Sum", label = "${k} errors" }]], [for k, name in local.fn : ["AWS/Lambda", "Throttles", "FunctionName", name, { stat = "Sum", label = "${k} throttles" }]])
    },
    {
      title = "Queue depth and age"
      metrics = [
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.events.name, { stat = "Maximum" }],
        ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", aws_sqs_queue.events.name, { stat = "Maximum", yAxis = "right" }],
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.dlq.name, { stat = "Maximum", label = "DLQ" }],
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.stream_failures.name, { stat = "Maximum", label = "stream failures" }],
      ]
    },
    {
      title = "Worker concurrency"
      metrics = [
        ["AWS/Lambda", "ConcurrentExecutions", "FunctionName", local.fn["worker"], { stat = "Maximum" }],
      ]
    },
    {
      title = "Stream throughput and consumer lag"
      metrics = concat(
        [["AWS/Kinesis", "IncomingRecords", "StreamName", aws_kinesis_stream.events.name, { stat = "Sum" }]],
        [for k in keys(local.stream_consumers) : ["AWS/Lambda", "IteratorAge", "FunctionName", local.fn[k], { stat = "Maximum", label = "${k} iterator age", yAxis = "right" }]],
      )
    },
    {
      title = "sluice's own metrics (namespace ${local.metrics_namespace})"
      metrics = [for m in [
        ["RecordsAccepted", "ingest"], ["RecordsRejected", "ingest"], ["RequestsRefused", "ingest"], ["RecordsStored", "worker"],
        ["PermanentFailures", "worker"], ["ThrottledCalls", "worker"], ["Skipped", "archiver"], ["Skipped", "rollup"],
      ] : [local.metrics_namespace, m[0], "service", local.service_names[m[1]], { stat = "Sum", label = "${m[1]} ${m[0]}" }]]
    },
    {
      title = "Events table writes and throttles"
      metrics = [
        ["AWS/DynamoDB", "ConsumedWriteCapacityUnits", "TableName", aws_dynamodb_table.events.name, { stat = "Sum" }],
        ["AWS/DynamoDB", "WriteThrottleEvents", "TableName", aws_dynamodb_table.events.name, { stat = "Sum", yAxis = "right" }],
      ]
    },
  ]
}

resource "aws_cloudwatch_dashboard" "main" {
  dashboard_name = local.name

  dashboard_body = jsonencode({
    widgets = [for i, w in local.dashboard_widgets : {
      type   = "metric"
      x      = (i % 2) * 12
      y      = floor(i / 2) * 6
      width  = 12
      height = 6
      properties = {
        title   = w.title
        region  = local.region
        view    = "timeSeries"
        stacked = false
        period  = 60
        metrics = w.metrics
      }
    }]
  })
}
