# Shared by check.sh and tf.sh (sourced, not run).

# Where the provider mirror lives (the Makefile exports the same default).
TF_PLUGIN_MIRROR="${TF_PLUGIN_MIRROR:-/opt/tf-plugins}"

# Never phone home for version checks: these scripts run offline.
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1

tf_have_mirror() {
  [[ -d "$TF_PLUGIN_MIRROR/registry.terraform.io/hashicorp/aws" ]]
}

# tf_use_mirror FILE: write a CLI config that installs hashicorp/aws from the filesystem mirror only
# (no direct registry access) and export TF_CLI_CONFIG_FILE to it.
tf_use_mirror() {
  local cfg="$1"
  mkdir -p "$(dirname "$cfg")"
  cat >"$cfg" <<HCL
provider_installation {
  filesystem_mirror {
    path    = "$TF_PLUGIN_MIRROR"
    include = ["registry.terraform.io/hashicorp/aws"]
  }
}
HCL
  export TF_CLI_CONFIG_FILE="$cfg"
}

# tf_quiet LOG CMD...: run CMD with its output in LOG, shown only when it fails.
tf_quiet() {
  local log="$1"
  shift
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "FAILED: $*" >&2
    return 1
  fi
}
