terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }

  # No backend block: state is local, one workspace per environment (infra/scripts/tf.sh selects it).
  # A team adds `backend "s3" {}` in a backend.tf of its own; see README.md.
}

provider "aws" {
  region = var.region

  # Local mode (moto, LocalStack): the endpoint comes from AWS_ENDPOINT_URL, which the provider honours;
  # these flags only stop the provider from calling the real AWS metadata/validation endpoints.
  skip_credentials_validation = var.local_mode
  skip_metadata_api_check     = var.local_mode
  skip_region_validation      = var.local_mode
  s3_use_path_style           = var.local_mode

  default_tags {
    tags = local.tags
  }
}
