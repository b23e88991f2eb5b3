#!/usr/bin/env bash
# make tf-check: terraform fmt, offline init + validate against the provider mirror, terraform test
# (mocked AWS provider: no account, no network) and checkov from its own virtualenv.
#
# Without the terraform CLI or the provider mirror, the steps that need them are skipped with a message
# and the script exits 0; every step that runs must pass.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=lib.sh
source infra/scripts/lib.sh

# checkov pins old boto3/botocore versions, so it lives in its own virtualenv, never in .venv.
CHECKOV_VERSION="3.3.30"
CHECKOV_VENV="${CHECKOV_VENV:-$ROOT/.venv-checkov}"
PYTHON="${PYTHON:-python3}"

skipped=()
started=$SECONDS
step() { printf '\n==> %s\n' "$*"; }

# --- terraform ------------------------------------------------------------------------------------
if ! command -v terraform >/dev/null 2>&1; then
  skipped+=("terraform fmt/validate/test: the terraform CLI is not on PATH (install Terraform >= 1.7 to run them)")
else
  if tf_have_mirror; then
    tf_use_mirror "$ROOT/infra/.terraform/mirror.tfrc"
  elif [[ -n "${TF_CLI_CONFIG_FILE:-}" && ! -f "$TF_CLI_CONFIG_FILE" ]]; then
    unset TF_CLI_CONFIG_FILE # a dangling setting only produces warnings
  fi

  step "terraform fmt -check -recursive infra"
  terraform fmt -check -recursive -diff infra

  tf_version="$(terraform version -json | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["terraform_version"])')"
  if ! tf_have_mirror; then
    skipped+=("terraform init/validate/test: no provider mirror at $TF_PLUGIN_MIRROR (need registry.terraform.io/hashicorp/aws there; set TF_PLUGIN_MIRROR)")
  else
    step "terraform init -backend=false (offline, provider from $TF_PLUGIN_MIRROR)"
    # -lockfile=readonly: the committed .terraform.lock.hcl must already match the mirror's provider.
    tf_quiet infra/.terraform/init.log \
      terraform -chdir=infra init -backend=false -input=false -lockfile=readonly -no-color
    echo "ok (terraform $tf_version)"

    step "terraform validate"
    terraform -chdir=infra validate -no-color

    # mock_provider (and its shared mock files) needs Terraform 1.7.
    if "$PYTHON" -c 'import sys; v=tuple(int(x) for x in sys.argv[1].split("-")[0].split(".")[:2]); sys.exit(v < (1, 7))' "$tf_version"; then
      step "terraform test (mocked AWS provider)"
      terraform -chdir=infra test -no-color
    else
      skipped+=("terraform test: terraform $tf_version has no mock_provider (needs >= 1.7)")
    fi
  fi
fi

# --- checkov --------------------------------------------------------------------------------------
step "checkov $CHECKOV_VERSION (skip list: infra/.checkov.yaml)"
# Every skipped check must carry its reason.
if grep -nE '^\s*-\s*CKV[A-Z0-9_]*\s*(#\s*)?$' infra/.checkov.yaml; then
  echo "FAILED: the skip entries above in infra/.checkov.yaml have no reason" >&2
  exit 1
fi
stamp="$CHECKOV_VENV/.installed-checkov-$CHECKOV_VERSION"
if [[ ! -f "$stamp" ]]; then
  echo "installing checkov $CHECKOV_VERSION into $CHECKOV_VENV (once)"
  rm -rf "$CHECKOV_VENV"
  "$PYTHON" -m venv "$CHECKOV_VENV"
  tf_quiet "$CHECKOV_VENV/install.log" \
    "$CHECKOV_VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
  touch "$stamp"
fi
# BC_SKIP_MAPPING: no download of the platform's guideline mapping (offline, and not needed).
BC_SKIP_MAPPING=TRUE "$CHECKOV_VENV/bin/checkov" --config-file infra/.checkov.yaml -d infra

# --- summary --------------------------------------------------------------------------------------
echo
if ((${#skipped[@]})); then
  for s in "${skipped[@]}"; do echo "SKIPPED: $s"; done
fi
echo "infra checks passed in $((SECONDS - started))s"
