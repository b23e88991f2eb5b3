# What a deployment review of a real account asked for (issue 17): metrics per environment, alarms on
# sluice's own metrics, a destroyable dev stack, webhook secrets by ARN, full route URLs, the $default
# route, cheap idle defaults.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  env             = "test"
  lambda_zip_path = "tests/fixtures/lambda.zip"
}

run "metrics_carry_the_environment" {
  command = apply

  assert {
    condition     = alltrue([for f in aws_lambda_function.this : f.environment[0].variables.POWERTOOLS_METRICS_NAMESPACE == "sluice-test"])
    error_message = "Every function must emit its metrics in the stack's namespace (<name_prefix>-<env>)."
  }
  assert {
    condition     = alltrue([for k, f in aws_lambda_function.this : f.environment[0].variables.POWERTOOLS_SERVICE_NAME == "sluice-test-${k}"])
    error_message = "Every function's service name must carry the stack name."
  }
  assert {
    condition = alltrue([for a in aws_cloudwatch_metric_alarm.own_metric :
    a.namespace == "sluice-test" && contains([for f in aws_lambda_function.this : f.environment[0].variables.POWERTOOLS_SERVICE_NAME], a.dimensions.service)])
    error_message = "Alarms on sluice's metrics must watch the namespace and service names the functions emit."
  }
  assert {
    condition     = strcontains(aws_cloudwatch_dashboard.main.dashboard_body, "\"sluice-test\"") && !strcontains(aws_cloudwatch_dashboard.main.dashboard_body, "\"sluice\",")
    error_message = "The dashboard must show sluice's metrics from the stack's namespace."
  }
}

run "two_environments_never_share_a_namespace" {
  command = plan

  variables {
    env = "prod"
  }

  assert {
    condition     = local.metrics_namespace == "sluice-prod" && aws_lambda_function.this["worker"].environment[0].variables.POWERTOOLS_SERVICE_NAME == "sluice-prod-worker"
    error_message = "Namespace and service names must change with env."
  }
}

run "alarms_watch_sluices_own_metrics" {
  command = apply

  variables {
    alarm_sns_topic_arn = "arn:aws:sns:eu-west-1:123456789012:oncall"
  }

  assert {
    condition = alltrue([for k, m in {
      "worker-permanent-failures" = "PermanentFailures", "worker-throttled-calls" = "ThrottledCalls",
      "archiver-skipped"          = "Skipped", "rollup-skipped" = "Skipped", "ingest-internal-errors" = "InternalErrors",
      "ingest-records-rejected"   = "RecordsRejected", "ingest-requests-refused" = "RequestsRefused",
    } : aws_cloudwatch_metric_alarm.own_metric[k].metric_name == m])
    error_message = "Permanent failures, skipped stream records, throttled writes, internal errors and rejections must each have an alarm."
  }
  assert {
    condition = (aws_cloudwatch_metric_alarm.own_metric["worker-permanent-failures"].threshold == 0 &&
      aws_cloudwatch_metric_alarm.own_metric["worker-permanent-failures"].dimensions.service == aws_lambda_function.this["worker"].environment[0].variables.POWERTOOLS_SERVICE_NAME &&
    aws_cloudwatch_metric_alarm.own_metric["archiver-skipped"].dimensions.service == aws_lambda_function.this["archiver"].environment[0].variables.POWERTOOLS_SERVICE_NAME)
    error_message = "A permanent failure must alarm at once, on the worker's own service dimension."
  }
  assert {
    condition     = alltrue([for a in aws_cloudwatch_metric_alarm.own_metric : a.alarm_actions == toset(["arn:aws:sns:eu-west-1:123456789012:oncall"]) && a.statistic == "Sum"])
    error_message = "Every alarm on sluice's metrics must notify the configured SNS topic."
  }
}

run "dev_archive_bucket_is_destroyable" {
  command = plan

  variables {
    deletion_protection = false
  }

  assert {
    condition     = aws_s3_bucket.archive.force_destroy
    error_message = "Without deletion protection, destroy must empty the archive bucket (no BucketNotEmpty)."
  }
}

run "protected_archive_bucket_is_not_emptied" {
  command = plan

  variables {
    deletion_protection = true
  }

  assert {
    condition     = !aws_s3_bucket.archive.force_destroy && aws_dynamodb_table.events.deletion_protection_enabled
    error_message = "With deletion protection, destroy must never empty the archive bucket."
  }
}

run "webhook_secrets_come_by_arn" {
  command = apply

  variables {
    webhook_secrets_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:sluice-webhooks-AbCdEf"
  }

  assert {
    condition     = aws_lambda_function.this["ingest"].environment[0].variables.WEBHOOK_SECRETS_ARN == var.webhook_secrets_arn && !contains(keys(aws_lambda_function.this["ingest"].environment[0].variables), "WEBHOOK_SECRETS")
    error_message = "The ingest function must get the secret's ARN, not the secrets."
  }
  assert {
    condition     = alltrue([for k, f in aws_lambda_function.this : k == "ingest" || !contains(keys(f.environment[0].variables), "WEBHOOK_SECRETS_ARN")])
    error_message = "Only the ingest function may know the webhook secret."
  }
  assert {
    condition = anytrue([for s in data.aws_iam_policy_document.function["ingest"].statement :
    s.actions == toset(["secretsmanager:GetSecretValue"]) && s.resources == toset([var.webhook_secrets_arn])])
    error_message = "The ingest role must read that secret, and only that one."
  }
  assert {
    condition = alltrue(flatten([for fn, doc in data.aws_iam_policy_document.function : [for s in doc.statement :
    fn == "ingest" || !anytrue([for a in s.actions : startswith(a, "secretsmanager:")])]]))
    error_message = "No other function may read secrets."
  }
}

run "no_secret_grant_without_an_arn" {
  command = apply

  assert {
    condition = alltrue(flatten([for fn, doc in data.aws_iam_policy_document.function : [for s in doc.statement :
    !anytrue([for a in s.actions : startswith(a, "secretsmanager:")])]]))
    error_message = "Without webhook_secrets_arn no role may read any secret."
  }
}

run "route_urls_and_default_route" {
  command = apply

  assert {
    condition     = output.ingest_url == "${trimsuffix(aws_apigatewayv2_stage.default.invoke_url, "/")}/ingest" && output.events_url == "${trimsuffix(aws_apigatewayv2_stage.default.invoke_url, "/")}/events"
    error_message = "ingest_url and events_url must be the full route URLs (the stage URL plus the route path)."
  }
  assert {
    condition     = aws_apigatewayv2_route.default.route_key == "$default" && aws_apigatewayv2_route.default.target == "integrations/${aws_apigatewayv2_integration.ingest.id}" && aws_apigatewayv2_route.default.authorization_type == "NONE"
    error_message = "Unmatched requests must reach the ingest function (its problem+json 404), not API Gateway's own 404."
  }
}

run "idle_defaults_are_cheap" {
  command = plan

  assert {
    condition     = aws_kinesis_stream.events.stream_mode_details[0].stream_mode == "PROVISIONED" && aws_kinesis_stream.events.shard_count == 1
    error_message = "By default the stream is one provisioned shard."
  }
  assert {
    condition     = !aws_apigatewayv2_stage.default.default_route_settings[0].detailed_metrics_enabled
    error_message = "Detailed route metrics are off by default."
  }
}

run "prod_keeps_its_own_capacity" {
  command = plan

  variables {
    stream_mode                    = "ON_DEMAND"
    detailed_route_metrics_enabled = true
  }

  assert {
    condition     = aws_kinesis_stream.events.stream_mode_details[0].stream_mode == "ON_DEMAND" && aws_apigatewayv2_stage.default.default_route_settings[0].detailed_metrics_enabled
    error_message = "prod.tfvars' on-demand stream and detailed metrics must take effect."
  }
}
