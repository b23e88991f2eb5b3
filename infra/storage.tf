# --- DynamoDB ---------------------------------------------------------------------------------------

resource "aws_dynamodb_table" "events" {
  name                        = "${local.name}-events"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "tenant_id"
  range_key                   = "event_id"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "tenant_id"
    type = "S"
  }

  attribute {
    name = "event_id"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }
}

resource "aws_dynamodb_table" "rollup" {
  name                        = "${local.name}-rollup"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "tenant_id"
  range_key                   = "bucket"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "tenant_id"
    type = "S"
  }

  attribute {
    name = "bucket"
    type = "S"
  }

  # The rollup's seen markers (consumers/rollup/counters.py) expire; counters and checkpoints have no TTL.
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }
}

resource "aws_dynamodb_table" "api_keys" {
  name                        = "${local.name}-api-keys"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "key_hash"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "key_hash"
    type = "S"
  }

  # Tenants' shared quota buckets (quota-state#<tenant>, ingest/quota_store.py) expire once idle; keys
  # and quota overrides carry no expires_at.
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }
}

# --- S3 archive -------------------------------------------------------------------------------------

resource "aws_s3_bucket" "archive" {
  # Bucket names are global: the account id and region keep two accounts' stacks apart.
  bucket = "${local.name}-archive-${local.account_id}-${local.region}"
  # Without deletion protection (dev, local) `make destroy` empties the bucket; with it, destroy stops at
  # BucketNotEmpty, as it stops at the protected tables.
  force_destroy = var.local_mode || !var.deletion_protection
}

resource "aws_s3_bucket_public_access_block" "archive" {
  bucket                  = aws_s3_bucket.archive.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "archive" {
  bucket = aws_s3_bucket.archive.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id

  rule {
    # The AWS managed key (aws/s3) with a bucket key: KMS encryption without a key policy to run or
    # per-object KMS calls to pay for.
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "archive" {
  count  = var.archive_versioning_enabled ? 1 : 0
  bucket = aws_s3_bucket.archive.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id

  rule {
    id     = "archive-tiering"
    status = "Enabled"

    filter {}

    dynamic "transition" {
      for_each = var.archive_transition_days > 0 ? [1] : []
      content {
        days          = var.archive_transition_days
        storage_class = var.archive_transition_storage_class
      }
    }

    dynamic "expiration" {
      for_each = var.archive_expiration_days > 0 ? [1] : []
      content {
        days = var.archive_expiration_days
      }
    }

    dynamic "noncurrent_version_expiration" {
      for_each = var.archive_versioning_enabled ? [1] : []
      content {
        noncurrent_days = var.archive_noncurrent_expiration_days
      }
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.archive]
}

data "aws_iam_policy_document" "archive_bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.archive.arn,
      "${aws_s3_bucket.archive.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "archive" {
  bucket = aws_s3_bucket.archive.id
  policy = data.aws_iam_policy_document.archive_bucket.json

  # A bucket policy put while the public access block is still being applied can be rejected.
  depends_on = [aws_s3_bucket_public_access_block.archive]
}
