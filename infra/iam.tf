# One role per function, each allowed exactly what its code and its event source mapping use.
# Statements are data (local.function_statements) so that tests can check every one of them.

locals {
  kinesis_read_actions = [
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:ListShards",
  ]

  function_statements_all = {
    ingest = concat([
      { sid = "PublishToQueue", actions = ["sqs:SendMessage"], resources = [aws_sqs_queue.events.arn] },
      { sid = "PublishToStream", actions = ["kinesis:PutRecord", "kinesis:PutRecords"], resources = [aws_kinesis_stream.events.arn] },
      # API keys checked in the function (ingest/keyauth.py: Segment, PostHog, Snowplow, whose key is in the
      # body or whose refusals must be in the protocol's shape), and the quota overrides (quota#<tenant>).
      { sid = "LookUpApiKeys", actions = ["dynamodb:GetItem"], resources = [aws_dynamodb_table.api_keys.arn] },
      # Quota leases (ingest/quota_store.py): only the items under quota-state#, never a key's item.
      { sid = "LeaseQuotaState", actions = ["dynamodb:UpdateItem"], resources = [aws_dynamodb_table.api_keys.arn], leading_keys = ["quota-state#*"] },
      ], var.webhook_secrets_arn == null ? [] : [
      { sid = "ReadWebhookSecrets", actions = ["secretsmanager:GetSecretValue"], resources = [var.webhook_secrets_arn] },
    ])
    authorizer = [
      { sid = "LookUpApiKeys", actions = ["dynamodb:GetItem"], resources = [aws_dynamodb_table.api_keys.arn] },
    ]
    worker = [
      # What the SQS event source mapping does on the function's behalf.
      { sid = "ConsumeQueue", actions = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], resources = [aws_sqs_queue.events.arn] },
      # consumers/worker/store.py writes with BatchWriteItem only.
      { sid = "StoreEvents", actions = ["dynamodb:BatchWriteItem"], resources = [aws_dynamodb_table.events.arn] },
    ]
    archiver = [
      { sid = "ReadStream", actions = local.kinesis_read_actions, resources = [aws_kinesis_stream.events.arn] },
      { sid = "WriteArchive", actions = ["s3:PutObject"], resources = ["${aws_s3_bucket.archive.arn}/*"] },
      { sid = "ReportFailedBatches", actions = ["sqs:SendMessage"], resources = [aws_sqs_queue.stream_failures.arn] },
    ]
    rollup = [
      { sid = "ReadStream", actions = local.kinesis_read_actions, resources = [aws_kinesis_stream.events.arn] },
      # consumers/rollup/store.py: GetItem (the checkpoint), BatchGetItem (the seen markers of derived ids)
      # and TransactWriteItems of Update actions (counters, checkpoint) and Put actions (seen markers), which
      # IAM authorizes per item as dynamodb:UpdateItem and dynamodb:PutItem (there is no TransactWriteItems action).
      { sid = "WriteRollups", actions = ["dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:BatchGetItem"], resources = [aws_dynamodb_table.rollup.arn] },
      { sid = "ReportFailedBatches", actions = ["sqs:SendMessage"], resources = [aws_sqs_queue.stream_failures.arn] },
    ]
  }

  function_statements = {
    for fn in keys(local.functions) : fn => concat(
      local.function_statements_all[fn],
      [{
        sid       = "WriteOwnLogs"
        actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        resources = ["${aws_cloudwatch_log_group.function[fn].arn}:*"]
      }],
      # X-Ray has no resource-level permissions: "*" is the only possible resource for these two.
      var.xray_enabled ? [{
        sid       = "WriteTraces"
        actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
        resources = ["*"]
      }] : [],
    )
  }
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    # Only functions of this account may use the roles (confused-deputy guard).
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name               = "${local.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "function" {
  for_each = local.function_statements

  dynamic "statement" {
    for_each = each.value
    content {
      sid       = statement.value.sid
      effect    = "Allow"
      actions   = statement.value.actions
      resources = statement.value.resources

      dynamic "condition" {
        for_each = length(lookup(statement.value, "leading_keys", [])) > 0 ? [statement.value.leading_keys] : []
        content {
          test     = "ForAllValues:StringLike"
          variable = "dynamodb:LeadingKeys"
          values   = condition.value
        }
      }
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions

  name   = "${local.name}-${each.key}"
  role   = aws_iam_role.function[each.key].id
  policy = data.aws_iam_policy_document.function[each.key].json
}

# --- Tenant reader: a role that reads only the tenant named by its session tag ----------------------
# docs/security.md §4. The role is shared by every tenant: the broker that decides which tenant a user
# may see assumes it with the session tag tenant_id=<tenant>, and IAM allows only items whose partition
# key equals that tag. Created only when tenant_reader_principal_arns names the broker(s).

locals {
  tenant_reader_enabled = length(var.tenant_reader_principal_arns) > 0
}

data "aws_iam_policy_document" "tenant_reader_assume" {
  count = local.tenant_reader_enabled ? 1 : 0

  statement {
    sid     = "BrokersAssume"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = var.tenant_reader_principal_arns
    }
  }

  # The broker may set the tenant_id session tag, and no other tag.
  statement {
    sid     = "BrokersTagTheTenantOnly"
    actions = ["sts:TagSession"]

    principals {
      type        = "AWS"
      identifiers = var.tenant_reader_principal_arns
    }

    condition {
      test     = "Null"
      variable = "aws:RequestTag/tenant_id"
      values   = ["false"]
    }

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = ["tenant_id"]
    }
  }
}

data "aws_iam_policy_document" "tenant_reader" {
  count = local.tenant_reader_enabled ? 1 : 0

  statement {
    sid    = "ReadOwnTenantItemsOnly"
    effect = "Allow"
    # No Scan: it has no leading key, and ForAllValues over an empty set is true. No writes.
    actions   = ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"]
    resources = [aws_dynamodb_table.events.arn, aws_dynamodb_table.rollup.arn]

    # Every key the request touches must be the session's tenant or one of its partitions (<tenant>#<k>,
    # core/partitions.py). Tenant ids hold no '#', '*' or '?', so "<tenant>#*" matches no other tenant's key
    # ("ab*" would match tenant "abc").
    condition {
      test     = "ForAllValues:StringLike"
      variable = "dynamodb:LeadingKeys"
      values   = ["$${aws:PrincipalTag/tenant_id}", "$${aws:PrincipalTag/tenant_id}#*"]
    }

    # A session without the tag gets nothing.
    condition {
      test     = "Null"
      variable = "aws:PrincipalTag/tenant_id"
      values   = ["false"]
    }
  }
}

resource "aws_iam_role" "tenant_reader" {
  count = local.tenant_reader_enabled ? 1 : 0

  name               = "${local.name}-tenant-reader"
  assume_role_policy = data.aws_iam_policy_document.tenant_reader_assume[0].json
}

resource "aws_iam_role_policy" "tenant_reader" {
  count = local.tenant_reader_enabled ? 1 : 0

  name   = "${local.name}-tenant-reader"
  role   = aws_iam_role.tenant_reader[0].id
  policy = data.aws_iam_policy_document.tenant_reader[0].json
}
