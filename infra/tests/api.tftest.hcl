# Routes, authorizer, throttling, access logs and CORS of the HTTP API.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  env             = "test"
  lambda_zip_path = "tests/fixtures/lambda.zip"
  # Read independently of the module, so a module that stopped reading the routes of wiring.json would fail.
  expected = jsondecode(file("../core/wiring.json"))
}

run "routes_follow_wiring" {
  command = apply

  assert {
    condition     = toset(keys(aws_apigatewayv2_route.this)) == toset(keys(var.expected.routes))
    error_message = "The API must create exactly the routes of core/wiring.json."
  }
  assert {
    condition = alltrue([for k, r in var.expected.routes :
    aws_apigatewayv2_route.this[k].route_key == k && aws_apigatewayv2_route.this[k].authorization_type == (r.authorizer ? "CUSTOM" : "NONE")])
    error_message = "Each route must be guarded by the authorizer exactly when core/wiring.json says so."
  }
}

run "route_served_by_another_function_is_refused" {
  command = plan

  variables {
    wiring_file = "tests/fixtures/other-function.wiring.json"
  }

  expect_failures = [aws_apigatewayv2_route.this]
}

run "authorizer_guards_events_and_ingest" {
  command = apply

  assert {
    condition     = toset(keys(aws_apigatewayv2_route.this)) == toset(["POST /events", "POST /ingest", "POST /v1/logs", "POST /loki/api/v1/push", "GET /health", "GET /openapi.json", "POST /webhooks/{source}", "POST /v1/batch", "POST /v1/track", "POST /v1/identify", "POST /v1/page", "POST /v1/screen", "POST /v1/group", "POST /v1/alias", "POST /batch", "POST /batch/", "POST /capture", "POST /capture/", "POST /e", "POST /e/", "POST /i/v0/e", "POST /i/v0/e/", "POST /com.snowplowanalytics.snowplow/tp2", "GET /i", "POST /t/{key}/com.snowplowanalytics.snowplow/tp2", "GET /t/{key}/i"])
    error_message = "The API must expose exactly the documented routes."
  }
  assert {
    condition = alltrue([for r in ["POST /events", "POST /ingest", "POST /v1/logs", "POST /loki/api/v1/push"] :
    aws_apigatewayv2_route.this[r].authorization_type == "CUSTOM" && aws_apigatewayv2_route.this[r].authorizer_id == aws_apigatewayv2_authorizer.api_key[0].id])
    error_message = "POST /events, POST /ingest, POST /v1/logs and POST /loki/api/v1/push must use the API key authorizer."
  }
  assert {
    condition = alltrue([for r in ["GET /health", "GET /openapi.json", "POST /webhooks/{source}"] :
    aws_apigatewayv2_route.this[r].authorization_type == "NONE" && aws_apigatewayv2_route.this[r].authorizer_id == null])
    error_message = "Health, OpenAPI and webhooks (signature-checked in the function) take no authorizer."
  }
  assert {
    condition = alltrue([for r in ["POST /v1/batch", "POST /v1/track", "POST /v1/identify", "POST /v1/page", "POST /v1/screen", "POST /v1/group", "POST /v1/alias"] :
    aws_apigatewayv2_route.this[r].authorization_type == "NONE" && aws_apigatewayv2_route.this[r].authorizer_id == null])
    error_message = "The Segment routes check their write key in the function (it may be in the body), not with the authorizer."
  }
  assert {
    condition = alltrue([for r in ["POST /batch", "POST /batch/", "POST /capture", "POST /capture/", "POST /e", "POST /e/", "POST /i/v0/e", "POST /i/v0/e/"] :
    aws_apigatewayv2_route.this[r].authorization_type == "NONE" && aws_apigatewayv2_route.this[r].authorizer_id == null])
    error_message = "The PostHog routes take their key from the body: checked in the function, not by the authorizer."
  }
  assert {
    condition = alltrue([for r in ["POST /com.snowplowanalytics.snowplow/tp2", "GET /i", "POST /t/{key}/com.snowplowanalytics.snowplow/tp2", "GET /t/{key}/i"] :
    aws_apigatewayv2_route.this[r].authorization_type == "NONE" && aws_apigatewayv2_route.this[r].authorizer_id == null])
    error_message = "The Snowplow routes take their key from the path or a Bearer header: checked in the function."
  }
  assert {
    condition     = length(setsubtract(toset(["POST /v1/batch", "POST /v1/track", "POST /v1/identify", "POST /v1/page", "POST /v1/screen", "POST /v1/group", "POST /v1/alias", "POST /batch", "POST /batch/", "POST /capture", "POST /capture/", "POST /e", "POST /e/", "POST /i/v0/e", "POST /i/v0/e/", "POST /com.snowplowanalytics.snowplow/tp2", "GET /i", "POST /t/{key}/com.snowplowanalytics.snowplow/tp2", "GET /t/{key}/i"]), toset([for s in aws_apigatewayv2_stage.default.route_settings : s.route_key if s.throttling_rate_limit == var.key_in_function_throttling_rate_limit && s.throttling_burst_limit == var.key_in_function_throttling_burst_limit]))) == 0
    error_message = "Every route keyed in the function has its own throttling, at the key-in-function limits."
  }
  assert {
    condition = (aws_apigatewayv2_authorizer.api_key[0].authorizer_type == "REQUEST" &&
      aws_apigatewayv2_authorizer.api_key[0].enable_simple_responses &&
      aws_apigatewayv2_authorizer.api_key[0].authorizer_payload_format_version == "2.0" &&
      aws_apigatewayv2_authorizer.api_key[0].identity_sources == toset(["$request.header.Authorization"]) &&
      aws_apigatewayv2_authorizer.api_key[0].authorizer_result_ttl_in_seconds == 300 &&
    aws_apigatewayv2_authorizer.api_key[0].authorizer_uri == aws_lambda_function.this["authorizer"].invoke_arn)
    error_message = "The authorizer must be a REQUEST, simple-response, payload 2.0 Lambda authorizer on the Authorization header, cached 300 s."
  }
  assert {
    condition     = aws_lambda_function.this["ingest"].environment[0].variables.AUTH_MODE == "api_key"
    error_message = "With auth on, the functions must run with AUTH_MODE=api_key."
  }
  assert {
    condition     = aws_lambda_permission.api_authorizer[0].function_name == aws_lambda_function.this["authorizer"].function_name
    error_message = "API Gateway must be allowed to invoke the authorizer."
  }
}

run "integration_uses_payload_2" {
  command = apply

  assert {
    condition     = aws_apigatewayv2_integration.ingest.payload_format_version == "2.0" && aws_apigatewayv2_integration.ingest.integration_uri == aws_lambda_function.this["ingest"].invoke_arn
    error_message = "Every route goes to the ingest function with payload format 2.0."
  }
  assert {
    condition     = alltrue([for r in aws_apigatewayv2_route.this : r.target == "integrations/${aws_apigatewayv2_integration.ingest.id}"])
    error_message = "Every route must target the ingest integration."
  }
}

run "stage_is_throttled_and_logged" {
  command = apply

  variables {
    throttling_burst_limit = 42
    throttling_rate_limit  = 21
  }

  assert {
    condition = (aws_apigatewayv2_stage.default.name == "$default" && aws_apigatewayv2_stage.default.auto_deploy &&
      aws_apigatewayv2_stage.default.default_route_settings[0].throttling_burst_limit == 42 &&
    aws_apigatewayv2_stage.default.default_route_settings[0].throttling_rate_limit == 21)
    error_message = "The $default stage must auto-deploy and throttle with the configured limits."
  }
  assert {
    condition = (aws_apigatewayv2_stage.default.access_log_settings[0].destination_arn == aws_cloudwatch_log_group.api_access.arn &&
    can(jsondecode(aws_apigatewayv2_stage.default.access_log_settings[0].format).requestId))
    error_message = "Access logs must go to the API log group in JSON format."
  }
  assert {
    condition     = length(aws_apigatewayv2_api.http.cors_configuration) == 0
    error_message = "No CORS configuration unless origins are given."
  }
}

run "cors_lists_explicit_origins" {
  command = apply

  variables {
    cors_allowed_origins = ["https://app.example.com"]
  }

  assert {
    condition     = aws_apigatewayv2_api.http.cors_configuration[0].allow_origins == toset(["https://app.example.com"])
    error_message = "CORS must allow exactly the configured origins."
  }
}

run "cors_wildcard_is_refused" {
  command = plan

  variables {
    cors_allowed_origins = ["*"]
  }

  expect_failures = [var.cors_allowed_origins]
}

run "auth_disabled_leaves_routes_open" {
  command = apply

  variables {
    auth_enabled = false
  }

  assert {
    condition     = length(aws_apigatewayv2_authorizer.api_key) == 0 && !contains(keys(aws_lambda_function.this), "authorizer")
    error_message = "Without auth there is no authorizer and no authorizer function."
  }
  assert {
    condition     = alltrue([for r in aws_apigatewayv2_route.this : r.authorization_type == "NONE"])
    error_message = "Without auth no route uses an authorizer."
  }
  assert {
    condition     = aws_lambda_function.this["ingest"].environment[0].variables.AUTH_MODE == "none"
    error_message = "Without auth the functions run with AUTH_MODE=none."
  }
}

run "public_routes_have_their_own_lower_throttling" {
  command = apply

  assert {
    condition = (toset([for r in aws_apigatewayv2_stage.default.route_settings : r.route_key]) ==
    toset([for k, r in var.expected.routes : k if !r.authorizer]))
    error_message = "Every unauthenticated route of core/wiring.json (and no other) must have its own route throttling."
  }
  assert {
    condition = alltrue([for r in aws_apigatewayv2_stage.default.route_settings :
    r.throttling_rate_limit < var.throttling_rate_limit && r.throttling_burst_limit < var.throttling_burst_limit])
    error_message = "Public routes must be throttled below the stage default, which the authenticated routes use."
  }
}
