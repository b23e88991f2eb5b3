env                            = "prod"
region                         = "eu-west-1"
cost_center                    = "sluice-prod"
deletion_protection            = true
log_retention_days             = 90
log_level                      = "INFO"
xray_enabled                   = false
throttling_burst_limit         = 2000
throttling_rate_limit          = 1000
archive_versioning_enabled     = true
archive_transition_days        = 30
archive_expiration_days        = 730
stream_mode                    = "ON_DEMAND"
detailed_route_metrics_enabled = true
reserved_concurrency = {
  ingest = 200
}
# alarm_sns_topic_arn = "arn:aws:sns:eu-west-1:<account>:<topic>"
