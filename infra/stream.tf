resource "aws_kinesis_stream" "events" {
  name             = "${local.name}-events"
  retention_period = local.wiring.stream.retention_hours
  shard_count      = var.stream_mode == "PROVISIONED" ? local.wiring.stream.shard_count : null

  stream_mode_details {
    stream_mode = var.stream_mode
  }

  # The AWS managed key: no key policy to maintain, and producers/consumers need no kms: permissions.
  encryption_type = "KMS"
  kms_key_id      = "alias/aws/kinesis"
}
