locals {
  # The event-source wiring shared with the local pollers (core/wiring.py): batch sizes, windows,
  # timeouts and retry limits live there once, never in tfvars.
  wiring = jsondecode(file(coalesce(var.wiring_file, "${path.module}/../core/wiring.json")))

  name = "${var.name_prefix}-${var.env}"

  # sluice's own metrics (Powertools EMF): one namespace per stack, and a service dimension per function
  # that carries the stack name too.
  metrics_namespace = coalesce(var.metrics_namespace, local.name)
  service_names     = { for k in ["ingest", "authorizer", "worker", "archiver", "rollup"] : k => "${local.name}-${k}" }

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
