# Encryption, recovery, expiry and least privilege, on the resources the module actually creates.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  env                          = "test"
  lambda_zip_path              = "tests/fixtures/lambda.zip"
  tenant_reader_principal_arns = ["arn:aws:iam::123456789012:role/tenant-broker"]
}

run "encryption_is_on_everywhere" {
  command = apply

  assert {
    condition     = alltrue([for q in [aws_sqs_queue.events, aws_sqs_queue.dlq, aws_sqs_queue.stream_failures] : q.sqs_managed_sse_enabled])
    error_message = "Every SQS queue must have server-side encryption."
  }
  assert {
    condition     = aws_kinesis_stream.events.encryption_type == "KMS" && aws_kinesis_stream.events.kms_key_id == "alias/aws/kinesis"
    error_message = "The Kinesis stream must be KMS-encrypted."
  }
  assert {
    condition     = alltrue([for t in [aws_dynamodb_table.events, aws_dynamodb_table.rollup, aws_dynamodb_table.api_keys] : t.server_side_encryption[0].enabled])
    error_message = "Every DynamoDB table must have server-side encryption with KMS."
  }
  assert {
    condition     = one(one(aws_s3_bucket_server_side_encryption_configuration.archive.rule).apply_server_side_encryption_by_default).sse_algorithm == "aws:kms"
    error_message = "The archive bucket must default to KMS encryption."
  }
}

run "tables_recover_and_expire" {
  command = apply

  assert {
    condition     = alltrue([for t in [aws_dynamodb_table.events, aws_dynamodb_table.rollup, aws_dynamodb_table.api_keys] : t.point_in_time_recovery[0].enabled && t.billing_mode == "PAY_PER_REQUEST"])
    error_message = "Every table must be on-demand with point-in-time recovery."
  }
  assert {
    condition     = aws_dynamodb_table.events.ttl[0].enabled && aws_dynamodb_table.events.ttl[0].attribute_name == "expires_at"
    error_message = "The events table must expire items by TTL on expires_at."
  }
  assert {
    condition     = aws_dynamodb_table.events.hash_key == "tenant_id" && aws_dynamodb_table.events.range_key == "event_id" && aws_dynamodb_table.rollup.range_key == "bucket" && aws_dynamodb_table.api_keys.hash_key == "key_hash"
    error_message = "Table keys must match docs/architecture.md §5 (tenant_id/event_id, tenant_id/bucket, key_hash)."
  }
}

run "archive_bucket_is_private_and_tls_only" {
  command = apply

  assert {
    condition = (aws_s3_bucket_public_access_block.archive.block_public_acls && aws_s3_bucket_public_access_block.archive.block_public_policy &&
    aws_s3_bucket_public_access_block.archive.ignore_public_acls && aws_s3_bucket_public_access_block.archive.restrict_public_buckets)
    error_message = "The archive bucket must block every kind of public access."
  }
  assert {
    condition     = one(aws_s3_bucket_ownership_controls.archive.rule).object_ownership == "BucketOwnerEnforced"
    error_message = "The archive bucket must disable ACLs (BucketOwnerEnforced)."
  }
  assert {
    condition = anytrue([for s in data.aws_iam_policy_document.archive_bucket.statement :
      s.effect == "Deny" && anytrue([for c in s.condition : c.variable == "aws:SecureTransport" && contains(c.values, "false")])
    ])
    error_message = "The bucket policy must deny requests without TLS."
  }
  assert {
    condition     = length(aws_s3_bucket_versioning.archive) == 0
    error_message = "Versioning is off unless archive_versioning_enabled."
  }
}

run "function_policies_are_scoped" {
  command = apply

  assert {
    condition = alltrue(flatten([for fn, doc in data.aws_iam_policy_document.function : [for s in doc.statement :
    !anytrue([for a in s.actions : strcontains(a, "*")])]]))
    error_message = "No function policy may use a wildcard action."
  }
  assert {
    condition = alltrue(flatten([for fn, doc in data.aws_iam_policy_document.function : [for s in doc.statement :
    !contains(s.resources, "*")]]))
    error_message = "No function policy may use resource \"*\" (X-Ray is off here)."
  }
  assert {
    condition     = toset(flatten([for s in data.aws_iam_policy_document.function["ingest"].statement : tolist(s.actions)])) == toset(["sqs:SendMessage", "kinesis:PutRecord", "kinesis:PutRecords", "dynamodb:GetItem", "dynamodb:UpdateItem", "logs:CreateLogStream", "logs:PutLogEvents"])
    error_message = "The ingest function may only publish to the queue and the stream, look up API keys and quota overrides, lease quota state, and write its logs."
  }
  assert {
    condition = alltrue([for s in data.aws_iam_policy_document.function["ingest"].statement :
      !anytrue([for a in s.actions : startswith(a, "dynamodb:")]) || (
        toset(s.resources) == toset([aws_dynamodb_table.api_keys.arn]) && (
          toset(s.actions) == toset(["dynamodb:GetItem"]) ||
          toset(s.actions) == toset(["dynamodb:UpdateItem"]) && length(s.condition) == 1 &&
          alltrue([for c in s.condition : c.test == "ForAllValues:StringLike" && c.variable == "dynamodb:LeadingKeys" && toset(c.values) == toset(["quota-state#*"])])
        )
      )
    ])
    error_message = "The ingest function may read the API keys table (key and quota-override lookups) and update only its quota-state#* items, never write a key."
  }
  assert {
    condition = alltrue([for s in data.aws_iam_policy_document.function["worker"].statement :
      s.sid != "StoreEvents" || (s.resources == toset([aws_dynamodb_table.events.arn]) && s.actions == toset(["dynamodb:BatchWriteItem"]))
    ])
    error_message = "The worker may only BatchWriteItem on the events table (the code never calls PutItem)."
  }
  assert {
    condition = alltrue([for s in data.aws_iam_policy_document.function["rollup"].statement :
      !anytrue([for a in s.actions : startswith(a, "dynamodb:")]) || (s.resources == toset([aws_dynamodb_table.rollup.arn]) && s.actions == toset(["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"]))
    ])
    error_message = "The rollup may only GetItem/BatchGetItem (checkpoint, seen markers) and UpdateItem/PutItem (its transactions' Update and Put actions) on the rollup table."
  }
  assert {
    condition = alltrue([for s in data.aws_iam_policy_document.function["authorizer"].statement :
      s.sid == "WriteOwnLogs" || (s.resources == toset([aws_dynamodb_table.api_keys.arn]) && s.actions == toset(["dynamodb:GetItem"]))
    ])
    error_message = "The authorizer may only GetItem on the api keys table."
  }
  assert {
    condition = alltrue([for fn in ["archiver", "rollup"] : anytrue([for s in data.aws_iam_policy_document.function[fn].statement :
    s.actions == toset(["sqs:SendMessage"]) && s.resources == toset([aws_sqs_queue.stream_failures.arn])])])
    error_message = "Stream consumers must be allowed to send failed batches to the stream-failures queue (and only there)."
  }
  assert {
    condition     = alltrue([for fn, doc in data.aws_iam_policy_document.function : anytrue([for s in doc.statement : s.sid == "WriteOwnLogs" && s.resources == toset(["${aws_cloudwatch_log_group.function[fn].arn}:*"])])])
    error_message = "Each function may write only to its own log group."
  }
  assert {
    condition     = alltrue([for fn, role in aws_iam_role_policy.function : role.role == aws_iam_role.function[fn].id]) && length(aws_iam_role.function) == 5
    error_message = "There must be one role per function, each with its own policy."
  }
}

run "xray_is_the_only_wildcard_resource" {
  command = apply

  variables {
    xray_enabled = true
  }

  assert {
    condition = alltrue(flatten([for fn, doc in data.aws_iam_policy_document.function : [for s in doc.statement :
    !contains(s.resources, "*") || s.actions == toset(["xray:PutTraceSegments", "xray:PutTelemetryRecords"])]]))
    error_message = "Only the X-Ray write actions (no resource-level permissions) may use resource \"*\"."
  }
  assert {
    condition     = alltrue([for f in aws_lambda_function.this : f.tracing_config[0].mode == "Active"])
    error_message = "xray_enabled must turn on active tracing."
  }
}

run "tenant_reader_is_limited_to_its_session_tenant" {
  command = apply

  assert {
    condition = (one(data.aws_iam_policy_document.tenant_reader[0].statement).effect == "Allow" &&
      one(data.aws_iam_policy_document.tenant_reader[0].statement).actions == toset(["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"]) &&
    one(data.aws_iam_policy_document.tenant_reader[0].statement).resources == toset([aws_dynamodb_table.events.arn, aws_dynamodb_table.rollup.arn]))
    error_message = "tenant_reader may only GetItem/BatchGetItem/Query the events and rollup tables (no Scan, no writes, no API keys table)."
  }
  assert {
    condition = anytrue([for c in one(data.aws_iam_policy_document.tenant_reader[0].statement).condition :
    c.test == "ForAllValues:StringLike" && c.variable == "dynamodb:LeadingKeys" && c.values == tolist(["$${aws:PrincipalTag/tenant_id}", "$${aws:PrincipalTag/tenant_id}#*"])])
    error_message = "tenant_reader must be limited by dynamodb:LeadingKeys to the tenant_id session tag and its partitions (<tenant>#*)."
  }
  assert {
    # "<tenant>*" would let tenant "ab" read tenant "abc": every pattern is the tag alone or the tag, '#', '*'.
    condition = alltrue(flatten([for c in one(data.aws_iam_policy_document.tenant_reader[0].statement).condition :
      [for v in c.values : contains(["$${aws:PrincipalTag/tenant_id}", "$${aws:PrincipalTag/tenant_id}#*"], v)]
    if c.variable == "dynamodb:LeadingKeys"]))
    error_message = "tenant_reader's LeadingKeys may name only the session's tenant and <tenant>#*, never a prefix of another tenant."
  }
  assert {
    condition = anytrue([for c in one(data.aws_iam_policy_document.tenant_reader[0].statement).condition :
    c.test == "Null" && c.variable == "aws:PrincipalTag/tenant_id" && c.values == tolist(["false"])])
    error_message = "tenant_reader must allow nothing to a session without the tenant_id tag."
  }
  assert {
    condition = alltrue([for s in data.aws_iam_policy_document.tenant_reader_assume[0].statement :
      alltrue([for p in s.principals : p.type == "AWS" && p.identifiers == toset(["arn:aws:iam::123456789012:role/tenant-broker"])])
    ])
    error_message = "Only the configured brokers may assume tenant_reader (no account root)."
  }
  assert {
    condition = anytrue([for s in data.aws_iam_policy_document.tenant_reader_assume[0].statement :
      s.actions == toset(["sts:TagSession"]) &&
      anytrue([for c in s.condition : c.test == "ForAllValues:StringEquals" && c.variable == "aws:TagKeys" && c.values == tolist(["tenant_id"])]) &&
      anytrue([for c in s.condition : c.test == "Null" && c.variable == "aws:RequestTag/tenant_id" && c.values == tolist(["false"])])
    ])
    error_message = "Brokers may tag the session with tenant_id, and nothing else."
  }
}

run "tenant_reader_exists_only_with_brokers" {
  command = plan

  variables {
    tenant_reader_principal_arns = []
  }

  assert {
    condition     = length(aws_iam_role.tenant_reader) == 0 && length(aws_iam_role_policy.tenant_reader) == 0
    error_message = "No tenant_reader role without brokers to assume it."
  }
}

run "tenant_reader_refuses_an_account_root" {
  command = plan

  variables {
    tenant_reader_principal_arns = ["arn:aws:iam::123456789012:root"]
  }

  expect_failures = [var.tenant_reader_principal_arns]
}
