#!/usr/bin/env bash
# Terraform for sluice.
#   tf.sh plan|apply|destroy   real AWS, infra/envs/$ENV.tfvars, workspace $ENV (make plan/deploy/destroy);
#                              plan and apply run the concurrency preflight first
#   tf.sh preflight            only the concurrency preflight (make preflight)
#   tf.sh local                the same Terraform against moto: start it (unless AWS_ENDPOINT_URL is set),
#                              apply, print the outputs, destroy, stop it (make deploy-local)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
INFRA="$ROOT/infra"
# shellcheck source=lib.sh
source "$ROOT/infra/scripts/lib.sh"

ENV="${ENV:-dev}"
ARCH="${ARCH:-arm64}"
cmd="${1:-}"

die() {
  echo "error: $*" >&2
  exit 1
}

command -v terraform >/dev/null 2>&1 || die "terraform CLI not found on PATH (Terraform >= 1.5 is needed)"

zip_path="$ROOT/dist/sluice-lambda-$ARCH.zip"
if [[ ("$cmd" == "destroy" || "$cmd" == "preflight") && ! -f "$zip_path" ]]; then
  # Neither uploads code: a placeholder satisfies the zip precondition without a build.
  zip_path="$INFRA/tests/fixtures/lambda.zip"
fi
[[ -f "$zip_path" ]] || die "$zip_path not found: run \`make build\` (ARCH=$ARCH) first"
zip_vars=(-var "lambda_zip_path=$zip_path" -var "lambda_architecture=$ARCH")

# The provider comes from the filesystem mirror when there is one, else from the registry as usual.
if tf_have_mirror; then
  tf_use_mirror "${TF_DATA_DIR:-$INFRA/.terraform}/mirror.tfrc"
elif [[ -n "${TF_CLI_CONFIG_FILE:-}" && ! -f "$TF_CLI_CONFIG_FILE" ]]; then
  unset TF_CLI_CONFIG_FILE
fi

tf() { terraform -chdir="$INFRA" "$@"; }

moto_pid="" # the emulator this script started, if any (global: the EXIT trap reads it)
stop_moto() {
  if [[ -n "$moto_pid" ]]; then
    kill "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
    echo "moto stopped (pid $moto_pid)"
    moto_pid=""
  fi
}

real_aws() {
  local action="$1"
  local var_file="envs/$ENV.tfvars"
  [[ -f "$INFRA/$var_file" ]] || die "no infra/$var_file (ENV=$ENV)"
  [[ -z "${AWS_ENDPOINT_URL:-}" ]] || die "AWS_ENDPOINT_URL is set ($AWS_ENDPOINT_URL): refusing to run '$action' against an emulator with the real state; unset it, or use \`make deploy-local\`"

  # A clear error before Terraform's own, and a look at which account this is about to change.
  local py="$ROOT/.venv/bin/python"
  [[ -x "$py" ]] || py="python3"
  local who rc=0
  who="$("$py" - <<'PY' 2>&1
import sys
try:
    import boto3
except ImportError:
    sys.exit(3)
try:
    ident = boto3.client("sts").get_caller_identity()
except Exception as exc:  # no credentials, expired token, no region...
    print(f"{type(exc).__name__}: {exc}")
    sys.exit(1)
print(f"account {ident['Account']} as {ident['Arn']}")
PY
  )" || rc=$?
  if ((rc == 3)); then
    who="(not checked: no boto3 for $py; run \`make venv\`)"
  elif ((rc != 0)); then
    die "no usable AWS credentials (configure AWS_PROFILE, SSO, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY): ${who##*$'\n'}"
  fi
  echo "AWS: $who, ENV=$ENV"

  local init_args=(-input=false -lockfile=readonly)
  if [[ -f "$INFRA/backend.tf" ]]; then
    # Remote state (infra/backend.tf.example): the settings of this env's backend.
    local backend_config="${TF_BACKEND_CONFIG:-$INFRA/envs/$ENV.s3.tfbackend}"
    [[ -f "$backend_config" ]] || die "infra/backend.tf is present but $backend_config is not (see infra/backend.tf.example)"
    init_args+=(-backend-config="$backend_config")
  fi
  tf init "${init_args[@]}" >/dev/null
  tf workspace select -or-create "$ENV" >/dev/null

  if [[ "$action" != "destroy" ]]; then
    # Account quota vs what this env reserves, before Terraform fails half-way through an apply.
    local settings
    settings="$(echo 'jsonencode({reserved = var.reserved_concurrency, name = "${var.name_prefix}-${var.env}", env = var.env, region = var.region})' |
      tf console -var-file="$var_file" "${zip_vars[@]}")"
    "$py" "$INFRA/scripts/preflight.py" --terraform-console "$settings" || die "concurrency preflight failed (above)"
  fi
  [[ "$action" == "preflight" ]] && return 0

  tf "$action" -input=false -var-file="$var_file" "${zip_vars[@]}"
}

local_stack() {
  # A state and a data dir of their own under .local/: this can never touch a real stack's state.
  local work="$ROOT/.local/terraform"
  mkdir -p "$work"
  export TF_DATA_DIR="$work/data"
  tf_have_mirror && tf_use_mirror "$TF_DATA_DIR/mirror.tfrc"
  local state="$work/local.tfstate"
  rm -f "$state" "$state.backup"

  trap stop_moto EXIT
  if [[ -f "$INFRA/backend.tf" ]]; then
    # A team's remote backend must never receive the emulator's state: an override file (merged over
    # backend.tf by Terraform) puts this run on the local backend, and is removed on exit.
    local override="$INFRA/zz_local_backend_override.tf"
    printf 'terraform {\n  backend "local" {}\n}\n' >"$override"
    trap 'rm -f "'"$override"'"; stop_moto' EXIT
  fi

  if [[ -z "${AWS_ENDPOINT_URL:-}" ]]; then
    local moto=""
    for candidate in "$ROOT/.venv/bin/moto_server" "$(command -v moto_server || true)" /tmp/probe/bin/moto_server; do
      if [[ -n "$candidate" && -x "$candidate" ]]; then
        moto="$candidate"
        break
      fi
    done
    [[ -n "$moto" ]] || die "moto_server not found: run \`make venv\` (or set AWS_ENDPOINT_URL to a running emulator)"
    local port
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    "$moto" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
    moto_pid=$!
    export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do
      if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
        "$AWS_ENDPOINT_URL/moto-api/" >/dev/null 2>&1; then
        break
      fi
      kill -0 "$moto_pid" 2>/dev/null || {
        cat "$work/moto.log" >&2
        die "moto_server exited"
      }
      sleep 0.2
    done
    echo "moto: $AWS_ENDPOINT_URL (pid $moto_pid, log $work/moto.log)"
  else
    echo "emulator: $AWS_ENDPOINT_URL (already running)"
  fi

  # Fake credentials only: nothing here may reach a real account.
  unset AWS_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1

  local vars=(
    -state="$state"
    -var env=local
    -var region=us-east-1
    -var local_mode=true
    -var deletion_protection=false
    -var 'tenant_reader_principal_arns=["arn:aws:iam::123456789012:role/sluice-local-tenant-broker"]'
    "${zip_vars[@]}"
  )

  tf init -input=false -lockfile=readonly >/dev/null
  # A bound on each step: an emulator that never reports a state the provider waits for must not hang CI.
  echo "terraform apply (local)..."
  if ! timeout 900 terraform -chdir="$INFRA" apply -input=false -auto-approve -no-color "${vars[@]}" >"$work/apply.log" 2>&1; then
    tail -40 "$work/apply.log" >&2
    die "terraform apply against the emulator failed (log: $work/apply.log)"
  fi
  grep -E '^Apply complete' "$work/apply.log"
  tf output -state="$state" -no-color

  # The CLI's deployment path against what Terraform created: the outputs, the emulator's endpoint.
  local py="$ROOT/.venv/bin/python"
  if [[ -x "$py" ]]; then
    echo "sluice CLI against the applied stack..."
    tf output -state="$state" -json >"$work/outputs.json"
    local sluice=("$py" -m local --outputs "$work/outputs.json")
    (
      cd "$ROOT"
      set -x
      "${sluice[@]}" stats
      "${sluice[@]}" keys create --tenant acme --description deploy-local >/dev/null
      "${sluice[@]}" --json keys list
      # A record on the queue and one dead letter, put there through the resources Terraform created:
      # the CLI must see both (no worker runs here: moto cannot run Lambda).
      "$py" - "$work/outputs.json" <<'PY'
import sys, boto3, orjson
out = {k: v["value"] for k, v in orjson.loads(open(sys.argv[1], "rb").read()).items()}
sqs = boto3.client("sqs")
body = orjson.dumps({"v": 1, "kind": "event", "tenant_id": "acme", "event_id": "0193a6b1-0000-7000-8000-00000000d1f0",
                     "received_at": "2026-12-01T00:00:00.000000Z", "source": {"route": "POST /events"},
                     "payload": {"deploy": "local"}}).decode()
sqs.send_message(QueueUrl=out["queue_url"], MessageBody=body)
sqs.send_message(QueueUrl=out["dlq_url"], MessageBody=body)
PY
      "${sluice[@]}" --json stats | "$py" -c 'import sys, orjson; s = orjson.loads(sys.stdin.read()); print(s); assert s["queue_depth"] == 1 and s["dlq_depth"] == 1, s'
      "${sluice[@]}" dlq show | grep -q 0193a6b1-0000-7000-8000-00000000d1f0
      "${sluice[@]}" events list --tenant acme
    ) || die "the sluice CLI failed against the applied stack"
  fi
  echo "terraform destroy (local)..."
  if ! timeout 900 terraform -chdir="$INFRA" destroy -input=false -auto-approve -no-color "${vars[@]}" >"$work/destroy.log" 2>&1; then
    tail -40 "$work/destroy.log" >&2
    die "terraform destroy against the emulator failed (log: $work/destroy.log)"
  fi
  grep -E '^Destroy complete' "$work/destroy.log"
}

case "$cmd" in
  plan | apply | destroy | preflight) real_aws "$cmd" ;;
  local) local_stack ;;
  *) die "usage: $0 plan|apply|destroy|preflight|local (ENV=dev|prod, ARCH=arm64|x86_64)" ;;
esac
