# ---------------------------------------------------------------------------------------------------
# Identity of the stack
# ---------------------------------------------------------------------------------------------------
variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name; with env it makes the stack name (<name_prefix>-<env>), so two stacks never collide."
  default     = "sluice"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name_prefix))
    error_message = "name_prefix must be 2-20 characters: lowercase letters, digits and dashes, starting with a letter (it ends up in S3 bucket names)."
  }
}

variable "env" {
  type        = string
  description = "Environment name (dev, staging, prod, local...): part of every resource name and the env tag."

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.env))
    error_message = "env must be 2-10 lowercase letters or digits, starting with a letter."
  }
}

variable "region" {
  type        = string
  description = "AWS region to deploy to."
  default     = "eu-west-1"
}

variable "cost_center" {
  type        = string
  description = "Value of the cost_center tag put on every resource (provider default_tags)."
  default     = "unassigned"
}

variable "local_mode" {
  type        = bool
  description = "True only for an emulator (moto/LocalStack via AWS_ENDPOINT_URL): skips credential/metadata/region validation, uses path-style S3 and leaves out what the emulator cannot create (see README)."
  default     = false
}

variable "wiring_file" {
  type        = string
  description = "Path of the event-source wiring JSON; null means core/wiring.json. Only tests point it elsewhere."
  default     = null
}

# ---------------------------------------------------------------------------------------------------
# Lambda
# ---------------------------------------------------------------------------------------------------
variable "lambda_zip_path" {
  type        = string
  description = "Path of the code zip built by `make build`; null means dist/sluice-lambda-<architecture>.zip."
  default     = null
}

variable "lambda_architecture" {
  type        = string
  description = "Instruction set of every function; must match the zip (make build ARCH=...)."
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "lambda_architecture must be arm64 or x86_64."
  }
}

variable "lambda_memory_mb" {
  type        = map(number)
  description = "Memory (MB) per function: keys ingest, authorizer, worker, archiver, rollup; missing keys use 512."
  default = {
    ingest     = 512
    authorizer = 256
    worker     = 512
    archiver   = 512
    rollup     = 256
  }
}

variable "ingest_timeout_seconds" {
  type        = number
  description = "Timeout of the ingest function; below API Gateway's 30 s integration limit. Worker and consumer timeouts come from core/wiring.json."
  default     = 15

  validation {
    condition     = var.ingest_timeout_seconds >= 3 && var.ingest_timeout_seconds <= 29
    error_message = "ingest_timeout_seconds must be between 3 and 29 (API Gateway gives up after 30 s)."
  }
}

variable "authorizer_timeout_seconds" {
  type        = number
  description = "Timeout of the API key authorizer function."
  default     = 5
}

variable "reserved_concurrency" {
  type        = map(number)
  description = "Optional reserved concurrency per function (keys as in lambda_memory_mb); absent = unreserved."
  default     = {}
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the Lambda and API access log groups."
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts."
  }
}

variable "log_level" {
  type        = string
  description = "POWERTOOLS_LOG_LEVEL of every function."
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "metrics_namespace" {
  type        = string
  description = "POWERTOOLS_METRICS_NAMESPACE of every function (and of the alarms and dashboard on sluice's own metrics); null means the stack name <name_prefix>-<env>, so two environments in one account never mix their metrics."
  default     = null
}

variable "xray_enabled" {
  type        = bool
  description = "Active X-Ray tracing on every function (the zip must then carry aws-xray-sdk for Powertools Tracer)."
  default     = false
}

# ---------------------------------------------------------------------------------------------------
# Application settings (environment variables read by core/settings.py)
# ---------------------------------------------------------------------------------------------------
variable "default_tenant" {
  type        = string
  description = "DEFAULT_TENANT: tenant of records that name none, when auth is off."
  default     = "default"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", var.default_tenant))
    error_message = "default_tenant must be a valid tenant id (core/tenancy.py)."
  }
}

variable "retention_days" {
  type        = number
  description = "RETENTION_DAYS: stored events expire (DynamoDB TTL on expires_at) this many days after receipt; 0 keeps them."
  default     = 30
}

variable "ingest_redaction" {
  type        = bool
  description = "INGEST_REDACTION: redact each record in the ingest function, before the queue and the stream. Off puts raw secrets on the queue (4 days), the DLQ (14 days) and the stream (24 h) and hands them to every stream consumer (docs/security.md)."
  default     = true
}

variable "redact_ip_addresses" {
  type        = bool
  description = "REDACT_IP_ADDRESSES: also redact IP addresses in stored payloads."
  default     = false
}

variable "simulated_cost_ms_per_kchar" {
  type        = number
  description = "SIMULATED_COST_MS_PER_KCHAR: artificial worker CPU cost for load tests; 0 in real use."
  default     = 0
}

variable "webhook_secrets" {
  type        = string
  description = "WEBHOOK_SECRETS (JSON: source -> {secrets: [...]}) given to the ingest function only. Sensitive: pass it with TF_VAR_webhook_secrets, never in a tfvars file."
  default     = ""
  sensitive   = true
}

variable "webhook_secrets_arn" {
  type        = string
  description = "ARN of a Secrets Manager secret whose SecretString is the WEBHOOK_SECRETS JSON. The ingest function reads it (GetSecretValue on this ARN only, cached webhook_secrets_ttl_seconds), so the secrets stay out of the state and the function configuration; null means webhook_secrets (or no webhooks). A secret under a customer managed KMS key also needs kms:Decrypt for the ingest role in that key's policy."
  default     = null

  validation {
    condition     = var.webhook_secrets_arn == null || can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.webhook_secrets_arn))
    error_message = "webhook_secrets_arn must be a Secrets Manager secret ARN."
  }
}

variable "webhook_secrets_ttl_seconds" {
  type        = number
  description = "WEBHOOK_SECRETS_TTL_SECONDS: how long a container keeps the secret before reading it again, so a rotation takes effect within this time."
  default     = 300
}

# ---------------------------------------------------------------------------------------------------
# API
# ---------------------------------------------------------------------------------------------------
variable "auth_enabled" {
  type        = bool
  description = "Attach the API key Lambda authorizer to POST /events and POST /ingest (AUTH_MODE=api_key)."
  default     = true
}

variable "cors_allowed_origins" {
  type        = list(string)
  description = "Browser origins allowed by CORS; empty means no CORS configuration at all. Never \"*\"."
  default     = []

  validation {
    condition     = !anytrue([for o in var.cors_allowed_origins : strcontains(o, "*")])
    error_message = "cors_allowed_origins must list explicit origins; wildcards are not allowed."
  }
}

variable "detailed_route_metrics_enabled" {
  type        = bool
  description = "Per-route CloudWatch metrics of the $default stage (billed as custom metrics per route); off by default, on in prod.tfvars."
  default     = false
}

variable "throttling_burst_limit" {
  type        = number
  description = "Default route throttling burst limit of the $default stage."
  default     = 500
}

variable "key_in_function_throttling_burst_limit" {
  type        = number
  description = "Throttling burst limit of the routes whose API key the function checks (Segment, PostHog)."
  default     = 200
}

variable "key_in_function_throttling_rate_limit" {
  type        = number
  description = "Throttling steady-state rate limit (requests per second) of the routes whose API key the function checks."
  default     = 500
}

variable "throttling_rate_limit" {
  type        = number
  description = "Default route throttling steady-state rate limit (requests per second) of the $default stage."
  default     = 1000
}

variable "tenant_quota" {
  type = object({
    records_per_second  = number
    records_burst       = number
    bytes_per_second    = number
    bytes_burst         = number
    requests_per_second = number
    requests_burst      = number
  })
  description = "Default per-tenant quotas of the ingest function (0: no limit; a burst of 0 is one second's rate); bytes are decompressed. Per-tenant overrides: `keys quota set`."
  default = {
    records_per_second  = 1000
    records_burst       = 5000
    bytes_per_second    = 10485760
    bytes_burst         = 20971520
    requests_per_second = 100
    requests_burst      = 200
  }

  validation {
    condition     = alltrue([for v in values(var.tenant_quota) : v >= 0])
    error_message = "Quotas are non-negative (0: no limit)."
  }
}

variable "tenant_partitions" {
  type        = number
  description = "Default partition key values per tenant in the events table (1: the key is the tenant id). A tenant whose writes need more than one key's ~1,000 WCU/s gets its own: `keys partitions set`. Never lower it: items written under the higher default would no longer be read (docs/architecture.md §5)."
  default     = 1

  validation {
    condition     = var.tenant_partitions >= 1 && var.tenant_partitions <= 64 && floor(var.tenant_partitions) == var.tenant_partitions
    error_message = "tenant_partitions is an integer from 1 to 64."
  }
}

variable "public_route_throttling" {
  type = map(object({
    rate_limit  = number
    burst_limit = number
  }))
  description = "Throttling of each unauthenticated route (route key -> requests per second and burst), far below the stage's, so public traffic cannot starve the authenticated routes."
  default = {
    "POST /webhooks/{source}" = { rate_limit = 50, burst_limit = 100 }
    "GET /health"             = { rate_limit = 10, burst_limit = 20 }
    "GET /openapi.json"       = { rate_limit = 5, burst_limit = 10 }
  }
}

variable "public_route_default" {
  type = object({
    rate_limit  = number
    burst_limit = number
  })
  description = "Throttling of an unauthenticated route that public_route_throttling does not name."
  default     = { rate_limit = 10, burst_limit = 20 }
}

# ---------------------------------------------------------------------------------------------------
# Stream and storage
# ---------------------------------------------------------------------------------------------------
variable "stream_mode" {
  type        = string
  description = "Kinesis capacity mode: PROVISIONED with the shard count of core/wiring.json (one shard costs least idle, the default), or ON_DEMAND (scales by itself, billed per stream-hour at a higher rate; prod.tfvars)."
  default     = "PROVISIONED"

  validation {
    condition     = contains(["ON_DEMAND", "PROVISIONED"], var.stream_mode)
    error_message = "stream_mode must be ON_DEMAND or PROVISIONED."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "DynamoDB deletion protection on the tables, and no force_destroy on the archive bucket (keep true in prod; false lets `make destroy` remove the tables and empty the bucket)."
  default     = true
}

variable "archive_versioning_enabled" {
  type        = bool
  description = "Turn on S3 versioning of the archive bucket (noncurrent versions then expire after archive_noncurrent_expiration_days)."
  default     = false
}

variable "archive_transition_days" {
  type        = number
  description = "Days after which archived objects move to archive_transition_storage_class; 0 disables the transition."
  default     = 30
}

variable "archive_transition_storage_class" {
  type        = string
  description = "Storage class archived objects move to after archive_transition_days."
  default     = "GLACIER_IR"

  validation {
    condition     = contains(["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"], var.archive_transition_storage_class)
    error_message = "archive_transition_storage_class must be an S3 lifecycle transition storage class."
  }
}

variable "archive_expiration_days" {
  type        = number
  description = "Days after which archived objects are deleted; 0 keeps them forever."
  default     = 365
}

variable "archive_noncurrent_expiration_days" {
  type        = number
  description = "Days after which noncurrent object versions are deleted (only with versioning)."
  default     = 30
}

# ---------------------------------------------------------------------------------------------------
# Access and alarms
# ---------------------------------------------------------------------------------------------------
variable "tenant_reader_principal_arns" {
  type        = list(string)
  description = "IAM roles or users (the brokers that decide which tenant a user may see) allowed to assume the tenant_reader role with a tenant_id session tag; empty means no tenant_reader role."
  default     = []

  validation {
    # A role or user, never an account root: trusting a root hands the role to every principal the
    # account's IAM policies allow.
    condition     = alltrue([for arn in var.tenant_reader_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/-]+$", arn))])
    error_message = "tenant_reader_principal_arns must list IAM role or user ARNs (not an account root)."
  }
}

variable "alarm_sns_topic_arn" {
  type        = string
  description = "SNS topic notified by every alarm (ALARM and OK); null means alarms without actions."
  default     = null
}

variable "iterator_age_alarm_ms" {
  type        = number
  description = "Alarm when a stream consumer's IteratorAge (maximum) exceeds this many milliseconds."
  default     = 300000
}

variable "api_5xx_rate_alarm_percent" {
  type        = number
  description = "Alarm when the API's 5xx responses exceed this percentage of requests over 5 minutes."
  default     = 1
}

variable "throttled_calls_alarm_threshold" {
  type        = number
  description = "Alarm when the worker's throttled DynamoDB calls (ThrottledCalls, retried) exceed this many in 5 minutes."
  default     = 50
}

variable "rejections_alarm_threshold" {
  type        = number
  description = "Alarm when refused records (RecordsRejected) or refused requests (RequestsRefused) each exceed this many in 5 minutes: a producer is sending what sluice cannot take."
  default     = 100
}

variable "ingest_p99_alarm_ms" {
  type        = number
  description = "Alarm when the ingest function's p99 duration exceeds this many milliseconds."
  default     = 3000
}

variable "throttled_alarm_minutes" {
  type        = number
  description = "Consecutive minutes with records refused over a tenant quota before the tenant-throttled alarm fires."
  default     = 5
}
