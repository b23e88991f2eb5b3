locals {
  # Declared once, in core/wiring.json (shared with the ingest handler and the local API Gateway, and
  # checked against both by tests/unit/test_routes.py): route key -> { authorizer, function }. The API key
  # authorizer guards a route when var.auth_enabled and its "authorizer" is true. Webhooks are
  # authenticated by their signature inside the ingest function; health and the OpenAPI document are public.
  routes = local.wiring.routes
  # Routes whose API key the ingest function checks itself (core/wiring.json key_in_function).
  key_in_function_routes = [for k, r in local.routes : k if try(r.key_in_function, false)]
}

resource "aws_apigatewayv2_api" "http" {
  name          = "${local.name}-api"
  protocol_type = "HTTP"
  description   = "sluice ingestion API (${local.name})"

  dynamic "cors_configuration" {
    for_each = length(var.cors_allowed_origins) > 0 ? [1] : []
    content {
      allow_origins = var.cors_allowed_origins
      allow_methods = ["GET", "POST", "OPTIONS"]
      allow_headers = ["authorization", "content-type", "content-encoding", "idempotency-key", "x-tenant-id"]
      max_age       = 300
    }
  }
}

resource "aws_apigatewayv2_integration" "ingest" {
  api_id                 = aws_apigatewayv2_api.http.id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_function.this["ingest"].invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 30000
}

resource "aws_apigatewayv2_authorizer" "api_key" {
  count = var.auth_enabled ? 1 : 0

  api_id                            = aws_apigatewayv2_api.http.id
  name                              = "${local.name}-api-key"
  authorizer_type                   = "REQUEST"
  authorizer_uri                    = aws_lambda_function.this["authorizer"].invoke_arn
  authorizer_payload_format_version = "2.0"
  enable_simple_responses           = true
  identity_sources                  = ["$request.header.Authorization"]
  authorizer_result_ttl_in_seconds  = 300
}

resource "aws_apigatewayv2_route" "this" {
  for_each = local.routes

  api_id             = aws_apigatewayv2_api.http.id
  route_key          = each.key
  target             = "integrations/${aws_apigatewayv2_integration.ingest.id}"
  authorization_type = each.value.authorizer && var.auth_enabled ? "CUSTOM" : "NONE"
  authorizer_id      = each.value.authorizer && var.auth_enabled ? aws_apigatewayv2_authorizer.api_key[0].id : null

  lifecycle {
    precondition {
      condition     = each.value.function == "ingest"
      error_message = "Every route of core/wiring.json must be served by the ingest function: it is the API's only integration."
    }
  }
}

# Every request no route of core/wiring.json matches goes to the ingest function, which answers a
# problem+json 404 (as the local API Gateway does, local/http.py) instead of API Gateway's own
# {"message":"Not Found"}. Unauthenticated: it only ever answers 404, and stage throttling bounds it.
resource "aws_apigatewayv2_route" "default" {
  api_id             = aws_apigatewayv2_api.http.id
  route_key          = "$default"
  target             = "integrations/${aws_apigatewayv2_integration.ingest.id}"
  authorization_type = "NONE"
}

resource "aws_cloudwatch_log_group" "api_access" {
  name              = "/aws/apigateway/${local.name}-api"
  retention_in_days = var.log_retention_days
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.http.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_burst_limit   = var.throttling_burst_limit
    throttling_rate_limit    = var.throttling_rate_limit
    detailed_metrics_enabled = var.detailed_route_metrics_enabled
  }

  # The unauthenticated routes get their own, much lower, limits: a flood on them is refused by API
  # Gateway before it reaches the function, so it cannot take the concurrency /events needs
  # (docs/quotas.md, public routes). A public route without its own entry takes public_route_default.
  dynamic "route_settings" {
    for_each = { for k, r in local.routes : k => lookup(var.public_route_throttling, k, var.public_route_default) if !r.authorizer && !contains(local.key_in_function_routes, k) }
    content {
      route_key                = route_settings.key
      throttling_burst_limit   = route_settings.value.burst_limit
      throttling_rate_limit    = route_settings.value.rate_limit
      detailed_metrics_enabled = var.detailed_route_metrics_enabled
    }
  }

  # Routes whose API key is checked in the function (Segment, PostHog, Snowplow: no authorizer) get
  # their own, lower limits: unauthenticated floods reach the function and the key store.
  dynamic "route_settings" {
    for_each = toset(local.key_in_function_routes)
    content {
      route_key                = route_settings.value
      throttling_burst_limit   = var.key_in_function_throttling_burst_limit
      throttling_rate_limit    = var.key_in_function_throttling_rate_limit
      detailed_metrics_enabled = var.detailed_route_metrics_enabled
    }
  }

  depends_on = [aws_apigatewayv2_route.this]

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      requestTime        = "$context.requestTime"
      ip                 = "$context.identity.sourceIp"
      userAgent          = "$context.identity.userAgent"
      routeKey           = "$context.routeKey"
      status             = "$context.status"
      protocol           = "$context.protocol"
      responseLength     = "$context.responseLength"
      latencyMs          = "$context.responseLatency"
      integrationStatus  = "$context.integrationStatus"
      integrationLatency = "$context.integrationLatency"
      integrationError   = "$context.integrationErrorMessage"
      authorizerError    = "$context.authorizer.error"
      tenant             = "$context.authorizer.tenant_id"
    })
  }
}

resource "aws_lambda_permission" "api_ingest" {
  statement_id  = "AllowApiGatewayInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["ingest"].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http.execution_arn}/*"
}

resource "aws_lambda_permission" "api_authorizer" {
  count = var.auth_enabled ? 1 : 0

  statement_id  = "AllowApiGatewayAuthorizer"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["authorizer"].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http.execution_arn}/authorizers/${aws_apigatewayv2_authorizer.api_key[0].id}"
}
