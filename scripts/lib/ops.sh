# shellcheck shell=bash
# Shared helpers for the operations scripts (bootstrap-state, deploy, rollback, destroy).
# Source it; do not execute it.
#
# Contract:
#   - OPS_DRY_RUN=1 turns every call made through `run` into a printed "DRY-RUN: ..." line,
#     while read-only queries made through plain commands still run. Scripts therefore
#     route every mutating call through `run` and nothing else.
#   - The Terraform state of environment ENV lives in the bucket
#     quanttrader-tfstate-<account-id>-<region> under key envs/ENV/terraform.tfstate,
#     locked with Terraform's native S3 lock file (no DynamoDB table).
#   - The image tag of environment ENV is the line `  tag: "<tag>"` inside the top-level
#     `image:` block of deploy/helm/quanttrader/values-ENV.yaml (the GitOps contract).
#   - Every function that fails prints why on stderr and returns non-zero; callers run
#     under `set -euo pipefail`.

OPS_ROOT="${OPS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
OPS_DRY_RUN="${OPS_DRY_RUN:-0}"
OPS_ENVIRONMENTS=(lab dev staging prod)
# Environments that run the application; lab is an infrastructure-only cost experiment.
# shellcheck disable=SC2034 # read by the scripts that source this file
OPS_APP_ENVIRONMENTS=(dev staging prod)
# Promotion order: an image reaches an environment only after the one before it.
OPS_PROMOTION_ORDER=(dev staging prod)
OPS_TF_ENVS_DIR="${OPS_TF_ENVS_DIR:-$OPS_ROOT/deploy/terraform/envs}"
OPS_HELM_CHART_DIR="${OPS_HELM_CHART_DIR:-$OPS_ROOT/deploy/helm/quanttrader}"
OPS_ARGOCD_DIR="${OPS_ARGOCD_DIR:-$OPS_ROOT/deploy/k8s/argocd}"
OPS_PROJECT="${OPS_PROJECT:-quanttrader}"

ops_log() { printf '==> %s\n' "$*" >&2; }
ops_warn() { printf 'WARNING: %s\n' "$*" >&2; }
ops_die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}

# run CMD...: executes a mutating command, or prints it in dry-run mode. The printed form
# is shell-quoted so that a reader can paste it.
run() {
  if [ "$OPS_DRY_RUN" = "1" ]; then
    printf 'DRY-RUN:' >&2
    printf ' %q' "$@" >&2
    printf '\n' >&2
    return 0
  fi
  "$@"
}

require_cmd() {
  local c missing=()
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || missing+=("$c")
  done
  [ "${#missing[@]}" -eq 0 ] || ops_die "missing required tools: ${missing[*]} (see docs/runbooks/README.md, 'Tools')"
}

# valid_env ENV [LIST...]: ENV must be one of LIST (default: every environment).
valid_env() {
  local env="$1"
  shift
  local allowed=("$@")
  [ "${#allowed[@]}" -gt 0 ] || allowed=("${OPS_ENVIRONMENTS[@]}")
  local e
  for e in "${allowed[@]}"; do
    [ "$e" = "$env" ] && return 0
  done
  ops_die "unknown environment '$env' (expected one of: ${allowed[*]})"
}

# The region comes from the caller's AWS configuration so that the scripts never guess.
aws_region() {
  local r="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
  if [ -z "$r" ]; then
    r="$(aws configure get region 2>/dev/null || true)"
  fi
  [ -n "$r" ] || ops_die "no AWS region: set AWS_REGION (for example us-east-1)"
  printf '%s\n' "$r"
}

aws_account_id() {
  local id
  id="$(aws sts get-caller-identity --query Account --output text)" ||
    ops_die "AWS credentials do not work (aws sts get-caller-identity failed)"
  [[ "$id" =~ ^[0-9]{12}$ ]] || ops_die "unexpected AWS account id '$id'"
  printf '%s\n' "$id"
}

# expect_account ID: refuses to act on an account other than the one the operator named,
# the classic way of destroying the wrong thing.
expect_account() {
  local want="$1" have
  [ -n "$want" ] || return 0
  have="$(aws_account_id)"
  [ "$have" = "$want" ] || ops_die "credentials are for account $have, but --account $want was given"
}

state_bucket() { printf '%s-tfstate-%s-%s\n' "$OPS_PROJECT" "$1" "$2"; }
state_key() { printf 'envs/%s/terraform.tfstate\n' "$1"; }

tf_dir() {
  local dir="$OPS_TF_ENVS_DIR/$1"
  [ -d "$dir" ] || ops_die "no Terraform environment at $dir"
  printf '%s\n' "$dir"
}

# tf_init DIR ENV ACCOUNT REGION: initialises DIR against the environment's remote state.
# -reconfigure because an operator may have initialised the same directory for another
# account before; -input=false so that a missing value fails instead of prompting.
tf_init() {
  local dir="$1" env="$2" account="$3" region="$4"
  terraform -chdir="$dir" init -input=false -reconfigure \
    -backend-config="bucket=$(state_bucket "$account" "$region")" \
    -backend-config="key=$(state_key "$env")" \
    -backend-config="region=$region" \
    -backend-config="encrypt=true" \
    -backend-config="use_lockfile=true" >&2
}

# tf_var_file DIR ENV: the tfvars file of the environment, when it has one.
tf_var_args() {
  local dir="$1" env="$2" f
  for f in "$dir/$env.tfvars" "$dir/terraform.tfvars"; do
    if [ -f "$f" ]; then
      printf -- '-var-file=%s\n' "$(basename "$f")"
      return 0
    fi
  done
}

# confirm_typed PROMPT EXPECTED [GIVEN]: the operator must type EXPECTED. GIVEN (from a
# --confirm flag) replaces the prompt for unattended runs; it must still match exactly.
confirm_typed() {
  local prompt="$1" expected="$2" given="${3:-}" answer
  if [ -n "$given" ]; then
    [ "$given" = "$expected" ] || ops_die "confirmation '$given' does not match '$expected'"
    return 0
  fi
  if [ ! -t 0 ]; then
    ops_die "confirmation needed but stdin is not a terminal: pass --confirm $expected"
  fi
  printf '%s\nType "%s" to continue: ' "$prompt" "$expected" >&2
  IFS= read -r answer || true
  [ "$answer" = "$expected" ] || ops_die "confirmation did not match; nothing was changed"
}

values_file() { printf '%s/values-%s.yaml\n' "$OPS_HELM_CHART_DIR" "$1"; }

# image_tag_in [FILE]: the tag line of the top-level image: block of a values file (or of
# stdin); exit 1 without one. Shared by the reads of the working tree and of Git history.
image_tag_in() {
  awk '
    /^[^[:space:]#]/ { in_image = ($0 ~ /^image:[[:space:]]*$/) }
    in_image && /^  tag:[[:space:]]*/ {
      v = $0
      sub(/^  tag:[[:space:]]*/, "", v)
      sub(/[[:space:]]+#.*$/, "", v)
      gsub(/"/, "", v)
      print v
      found = 1
      exit
    }
    END { if (!found) exit 1 }
  ' "$@"
}

# image_tag_of ENV: the tag ENV runs, per its values file in the working tree.
image_tag_of() {
  local f
  f="$(values_file "$1")"
  [ -f "$f" ] || ops_die "no values file $f"
  image_tag_in "$f" || ops_die "no '  tag:' line in the image: block of $f"
}

# valid_tag TAG: image tags we produce are immutable: a git commit SHA (40 hex) or a
# release version (vMAJOR.MINOR.PATCH). Anything else (latest, a branch name) is refused.
valid_tag() {
  [[ "$1" =~ ^([0-9a-f]{40}|v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?)$ ]] ||
    ops_die "image tag '$1' is not immutable (expected a 40-hex commit SHA or vX.Y.Z)"
}

# set_image_tag ENV TAG: rewrites only the tag line of the image: block, keeping every
# other byte of the file, so that the GitOps diff is one line.
set_image_tag() {
  local env="$1" tag="$2" f tmp
  f="$(values_file "$env")"
  [ -f "$f" ] || ops_die "no values file $f"
  image_tag_of "$env" >/dev/null
  tmp="$(mktemp)"
  awk -v tag="$tag" '
    /^[^[:space:]#]/ { in_image = ($0 ~ /^image:[[:space:]]*$/) }
    in_image && !done && /^  tag:[[:space:]]*/ { print "  tag: \"" tag "\""; done = 1; next }
    { print }
  ' "$f" >"$tmp"
  if [ "$OPS_DRY_RUN" = "1" ]; then
    printf 'DRY-RUN: set %s image tag to %s\n' "${f#"$OPS_ROOT"/}" "$tag" >&2
    rm -f "$tmp"
    return 0
  fi
  cat "$tmp" >"$f"
  rm -f "$tmp"
}

# previous_env ENV: the environment an image must have passed before reaching ENV.
previous_env() {
  local i
  for i in "${!OPS_PROMOTION_ORDER[@]}"; do
    if [ "${OPS_PROMOTION_ORDER[$i]}" = "$1" ]; then
      [ "$i" -gt 0 ] && printf '%s\n' "${OPS_PROMOTION_ORDER[$((i - 1))]}"
      return 0
    fi
  done
  return 0
}

eks_cluster_name() { printf '%s-%s\n' "$OPS_PROJECT" "$1"; }
argocd_app_name() { printf '%s-%s\n' "$OPS_PROJECT" "$1"; }

# git_push: pushes the current branch to its upstream. When the remote moved on since the
# checkout (a merge or another environment's promotion landed), the local commit is
# rebased onto it and pushed again; a conflict means someone changed the same line, and a
# person must decide, so nothing is pushed then.
git_push() {
  local attempt
  if [ "$OPS_DRY_RUN" = "1" ]; then
    run git -C "$OPS_ROOT" push
    return 0
  fi
  for attempt in 1 2 3; do
    if git -C "$OPS_ROOT" push; then
      return 0
    fi
    ops_warn "push rejected (attempt $attempt of 3): rebasing onto the remote branch"
    if ! git -C "$OPS_ROOT" pull --rebase; then
      git -C "$OPS_ROOT" rebase --abort >/dev/null 2>&1 || true
      ops_die "rebase onto the remote branch failed (the same lines changed there); nothing was pushed"
    fi
  done
  ops_die "push failed 3 times; the commit is local only"
}

# sync_window_open APP: whether Argo CD's sync windows (the `allow` windows of
# deploy/k8s/argocd/projects.yaml that name APP) let APP sync now (OPS_NOW, epoch seconds,
# replaces the clock in tests). Returns 0 when open, 1 when closed or when APP has no
# window at all (then nothing limits it: callers check that case with has_sync_window).
# Only the forms the repository uses are understood: cron "M H * * D|D-D|D,D|*", duration
# Nh or Nm, time zone UTC, `allow` windows. Anything else is an error, so that a new kind
# of window makes this check fail loudly instead of guessing.
sync_windows_of() {
  local app="$1" f="$OPS_ARGOCD_DIR/projects.yaml"
  [ -f "$f" ] || ops_die "no $f to read the sync windows from"
  awk -v app="$app" '
    function flush() {
      if (inwin && named) print kind "|" sched "|" dur "|" tz
      kind = ""; sched = ""; dur = ""; tz = "UTC"; named = 0
    }
    /^---/ { flush(); inwin = 0; next }
    /^  syncWindows:/ { inwin = 1; next }
    inwin && /^  [a-zA-Z]/ { flush(); inwin = 0 }
    inwin && /^    - kind:/ { flush(); kind = $NF; next }
    inwin && /^      schedule:/ { sched = $0; sub(/^[^:]*:[[:space:]]*/, "", sched); gsub(/"/, "", sched) }
    inwin && /^      duration:/ { dur = $NF }
    inwin && /^      timeZone:/ { tz = $NF }
    inwin && $0 ~ "^        - " app "$" { named = 1 }
    END { flush() }
  ' "$f"
}

has_sync_window() { [ -n "$(sync_windows_of "$1")" ]; }

sync_window_open() {
  local app="$1" now="${OPS_NOW:-$(date -u +%s)}" kind sched dur tz
  local m h dom mon dow secs d day start wd
  while IFS='|' read -r kind sched dur tz; do
    [ "$kind" = "allow" ] || ops_die "sync window of kind '$kind' for $app: check the window by hand"
    [ "$tz" = "UTC" ] || ops_die "sync window in time zone '$tz' for $app: check the window by hand"
    read -r m h dom mon dow <<<"$sched"
    if ! [[ "$m" =~ ^[0-9]+$ && "$h" =~ ^[0-9]+$ && "$dom" = "*" && "$mon" = "*" &&
      "$dow" =~ ^(\*|[0-7](-[0-7])?(,[0-7](-[0-7])?)*)$ ]]; then
      ops_die "sync window schedule '$sched' for $app: check the window by hand"
    fi
    case "$dur" in
      *h) secs=$((${dur%h} * 3600)) ;;
      *m) secs=$((${dur%m} * 60)) ;;
      *) ops_die "sync window duration '$dur' for $app: check the window by hand" ;;
    esac
    # A window that opened on one of the last 7 days (or today) and is still open.
    for d in 0 1 2 3 4 5 6 7; do
      day=$(((now / 86400 - d) * 86400))
      start=$((day + 10#$h * 3600 + 10#$m * 60))
      if [ "$start" -gt "$now" ] || [ "$now" -ge $((start + secs)) ]; then
        continue
      fi
      wd="$(date -u -d "@$day" +%w)" # 0 = Sunday, as in cron
      if dow_matches "$dow" "$wd"; then
        return 0
      fi
    done
  done < <(sync_windows_of "$app")
  return 1
}

# dow_matches FIELD WEEKDAY: cron day-of-week matching (0 and 7 are Sunday).
dow_matches() {
  local field="$1" wd="$2" part a b parts
  [ "$field" = "*" ] && return 0
  IFS=',' read -ra parts <<<"$field"
  for part in "${parts[@]}"; do
    a="${part%-*}"
    b="${part#*-}"
    [ "$a" = "7" ] && a=0
    [ "$b" = "7" ] && { [ "$wd" = "0" ] && return 0; b=6; }
    [ "$wd" -ge "$a" ] && [ "$wd" -le "$b" ] && return 0
  done
  return 1
}
