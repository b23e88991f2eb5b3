locals {
  # The event-source wiring shared with the local pollers (core/wiring.py): batch sizes, windows,
  # timeouts and retry limits live there once, never in tfvars.
  wiring = jsondecode(file(coalesce(var.wiring_file, "${path.module}/../core/wiring.json")))

  name = "${var.name_prefix}-${var.env}"

  tags = {
    project     = "sluice"
    env         = var.env
    cost_center = var.cost_center
    stack       = local.name
    managed_by  = "terraform"
  }

  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  lambda_zip = coalesce(var.lambda_zip_path, "${path.module}/../dist/sluice-lambda-${var.lambda_architecture}.zip")
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}
