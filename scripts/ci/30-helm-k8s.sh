#!/usr/bin/env bash
# Kubernetes delivery checks (issue 7): the Helm chart, the Kustomize overlays and the Argo CD
# manifests, all offline.
#   1. helm lint --strict and helm template for values.yaml and every values-<env>.yaml
#   2. kustomize build of every overlay, of deploy/k8s/argocd and deploy/k8s/addons
#   3. every rendered object validated: built-in kinds against the Kubernetes OpenAPI schemas
#      (kubernetes-validate, strict), CRD kinds against the CRDs vendored in deploy/k8s/crds
#   4. helm-unittest suites of the chart; promtool unit tests of its alerting rules (when
#      scripts/build-helm-promtool has built promtool, else SKIPPED)
#   5. Checkov on everything rendered: zero failed checks (skips only as annotated reasons)
#   6. the chart README's values table matches values.yaml; the vendored CRDs match the sha256
#      recorded with their upstream module versions in deploy/k8s/crds/SOURCES; shellcheck;
#      scripts/argocd-rollback exercised on a scratch git repository
# Tools: Helm, helm-unittest and kustomize built with Go from the module proxy, Python tools
# in a venv; everything cached under ~/.cache, keyed by version.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/ci/30-helm-k8s.sh [--keep-output]

Runs the Helm/Kubernetes checks of the repository (see the header of this file).
  --keep-output  keep the rendered manifests and print where they are
  -h, --help     this help
Environment: K8S_VERSIONS (default "1.32.0 1.34.0") are the Kubernetes versions validated against.
EOF
}

keep=0
for arg in "$@"; do
  case "$arg" in
    --keep-output) keep=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; usage >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh

HELM_VERSION=v3.21.3
HELM_UNITTEST_VERSION=v1.1.2
KUSTOMIZE_VERSION=v5.8.2
# The oldest and the newest EKS minor the Terraform eks module accepts (1.32-1.34), which is
# also the chart's kubeVersion floor.
read -r -a K8S_VERSIONS <<<"${K8S_VERSIONS:-1.32.0 1.34.0}"
RENDER_KUBE_VERSION="${K8S_VERSIONS[-1]}"

CHART=deploy/helm/quanttrader
K8S=deploy/k8s
VENV="$QT_CACHE/venv-k8s"
TOOLS="$QT_CACHE/tools"

passed=0
failed=0
failures=()
check() {
  local name="$1"
  shift
  log "$name"
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "FAILED: $name" >&2
  fi
}

# --- tools -------------------------------------------------------------------------------
# Each tool goes to a directory named after its version, so a version bump reinstalls it and
# a warm cache installs nothing.
install_go_tools() {
  command -v go >/dev/null || { echo "go is required (the Go toolchain of the machine image)" >&2; return 1; }
  local dir
  dir="$TOOLS/helm-$HELM_VERSION"
  if [ ! -x "$dir/helm" ]; then
    log "go install helm $HELM_VERSION"
    # The ldflags stamp what the Makefile of Helm stamps: its version and a current default
    # Kubernetes version (a plain `go install` would claim v1.20).
    local ldflags="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
    ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=33"
    ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=33"
    GOBIN="$dir" nice -n 10 go install -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  fi
  HELM="$dir/helm"

  dir="$TOOLS/helm-unittest-$HELM_UNITTEST_VERSION"
  if [ ! -x "$dir/helm-unittest" ]; then
    log "build helm-unittest $HELM_UNITTEST_VERSION"
    # Its go.mod has a replace directive, which `go install pkg@version` refuses: build it
    # inside the module as downloaded from the proxy instead.
    local src
    src="$(go mod download -json "github.com/helm-unittest/helm-unittest@$HELM_UNITTEST_VERSION" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [ -d "$src" ] || { echo "helm-unittest module not downloaded" >&2; return 1; }
    mkdir -p "$dir"
    (cd "$src" && nice -n 10 go build -o "$dir/helm-unittest" ./cmd/helm-unittest)
  fi
  HELM_UNITTEST="$dir/helm-unittest"

  dir="$TOOLS/kustomize-$KUSTOMIZE_VERSION"
  if [ ! -x "$dir/kustomize" ]; then
    log "go install kustomize $KUSTOMIZE_VERSION"
    GOBIN="$dir" nice -n 10 go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  fi
  KUSTOMIZE="$dir/kustomize"
}

install_python_tools() {
  local req="$K8S/tools/requirements.txt" stamp="$VENV/.requirements"
  if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$req" "$stamp"; then
    log "python venv $VENV ($(grep -v '^[[:space:]]*#' "$req" | tr '\n' ' '))"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$stamp"
  fi
}

install_go_tools
install_python_tools
need_apt shellcheck git

# $out holds only Kubernetes manifests (Checkov scans all of it); other artefacts go to $work.
work="$(mktemp -d)"
out="$work/manifests"
if [ "$keep" -eq 1 ]; then
  log "rendered manifests are kept in $work"
else
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$out/helm" "$out/kustomize"

# What the Argo CD ApplicationSet passes from the cluster secret (see deploy/k8s/README.md).
argocd_params=(
  --set-string aws.accountId=123456789012
  --set-string aws.region=eu-west-1
  --set-string ingress.host=quanttrader.example.com
  --set-string ingress.certificateArn=arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000
  --set-string externalSecrets.databaseCredentialsKey=arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-00000000-0000-0000-0000-000000000000-AbCdEf
)
values_files=("$CHART/values.yaml")
for f in "$CHART"/values-*.yaml; do values_files+=("$f"); done

render_chart() {
  local f name ok=0
  for f in "${values_files[@]}"; do
    name="$(basename "$f" .yaml)"
    echo "-- $name"
    local rp=(--set-string "aws.rolePrefix=quanttrader-${name#values-}")
    [ "$name" = values ] && rp=()
    "$HELM" lint --strict --quiet "$CHART" -f "$f" --kube-version "$RENDER_KUBE_VERSION" "${argocd_params[@]}" "${rp[@]}" || ok=1
    "$HELM" template quanttrader "$CHART" --namespace quanttrader -f "$f" \
      --kube-version "$RENDER_KUBE_VERSION" "${argocd_params[@]}" "${rp[@]}" >"$out/helm/$name.yaml" || ok=1
  done
  return "$ok"
}

build_kustomize() {
  local dir name ok=0
  for dir in "$K8S"/overlays/* "$K8S/argocd" "$K8S/addons"; do
    name="$(echo "${dir#"$K8S"/}" | tr / -)"
    echo "-- $name"
    "$KUSTOMIZE" build "$dir" >"$out/kustomize/$name.yaml" || ok=1
  done
  return "$ok"
}

validate() {
  local versions=() v
  for v in "${K8S_VERSIONS[@]}"; do versions+=(--k8s-version "$v"); done
  "$VENV/bin/python" "$K8S/tools/validate_manifests.py" --crds "$K8S/crds" "${versions[@]}" \
    "$out"/helm/*.yaml "$out"/kustomize/*.yaml
}

unittest() {
  "$HELM_UNITTEST" --strict --color=false "$CHART"
}

checkov() {
  # --skip-download: no call home (no network here, and none wanted in CI). Every failed
  # check fails the step; skips live next to the resource they concern, with their reason.
  "$VENV/bin/checkov" --directory "$out" --framework kubernetes --skip-download --quiet --compact
}

# promtool unit tests of the alerting rules, on the PrometheusRule as the chart renders it.
alert_tests() {
  local promtool dir="$work/alerts"
  if ! promtool="$(scripts/build-helm-promtool --print-path)"; then
    echo "SKIPPED: alert rule unit tests (promtool is not built: a cold Prometheus build takes minutes; run scripts/build-helm-promtool to build it)"
    return 0
  fi
  mkdir -p "$dir"
  "$HELM" template quanttrader "$CHART" --namespace quanttrader "${argocd_params[@]}" --show-only templates/prometheusrule.yaml |
    "$VENV/bin/python" -c 'import sys, yaml; yaml.safe_dump(yaml.safe_load(sys.stdin)["spec"], sys.stdout)' >"$dir/rules.yaml"
  cp "$CHART"/tests/alerts/*_test.yml "$dir/"
  "$promtool" check rules "$dir/rules.yaml" && (cd "$dir" && "$promtool" test rules ./*_test.yml)
}

readme() {
  QT_PYTHON="$VENV/bin/python" scripts/build-helm-readme --check "$CHART"
}

crd_sources() {
  scripts/build-helm-crds --check
}

lint_scripts() {
  shellcheck -x scripts/ci/30-helm-k8s.sh scripts/build-helm-readme scripts/build-helm-crds scripts/build-helm-promtool \
    scripts/argocd-rollback \
    deploy/k8s/tools/test-argocd-rollback.sh
}

rollback_selftest() {
  bash "$K8S/tools/test-argocd-rollback.sh"
}

check "helm lint and template (${#values_files[@]} values files)" render_chart
check "kustomize build (overlays, argocd, addons)" build_kustomize
check "schema validation (Kubernetes ${K8S_VERSIONS[*]} + vendored CRDs)" validate
check "helm-unittest" unittest
check "checkov (zero failed checks)" checkov
check "alert rule unit tests (promtool)" alert_tests
check "chart README matches values.yaml" readme
check "vendored CRDs match deploy/k8s/crds/SOURCES" crd_sources
check "shellcheck" lint_scripts
check "argocd-rollback on a scratch repository" rollback_selftest

[ "$failed" -eq 0 ] || echo "failed checks: ${failures[*]}" >&2
echo "helm-k8s: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
