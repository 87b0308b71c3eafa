#!/usr/bin/env bash
# deploy/kubernetes/: every manifest parses and validates against the
# Kubernetes API schemas (kubernetes-validate from PyPI, offline, strict: an
# unknown field fails), the fields the drain and the sizing depend on hold
# (deploy/kubernetes/check.py says which), `kubectl kustomize` builds the
# folder (its --dry-run=client needs an API server, so it is not used), and
# the container's own arguments start ringcast with working probe paths and a
# clean SIGTERM drain.
#
# kubectl is required: where it is missing, Debian's kubernetes-client is
# installed (as root, each apt step bounded to 300 s); where that cannot be
# done, the test fails rather than check less.
#
# Usage: bash deploy/kubernetes/test.sh. Uses $RINGCAST_BIN, else
# target/release/ringcast, else target/debug/ringcast (never builds one).
# One line per check; exits 1 on the first failure. About 5 s once the venv
# (deploy/requirements.txt, target/tmp/deploy/venv) and kubectl exist.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
folder=$root/deploy/kubernetes
work=$root/target/tmp/deploy
passed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { echo "FAIL: $*"; exit 1; }
mkdir -p "$work"

bin=${RINGCAST_BIN:-}
for candidate in "$root/target/release/ringcast" "$root/target/debug/ringcast"; do
    [[ -z $bin && -x $candidate ]] && bin=$candidate
done
[[ -n $bin && -x $bin ]] || fail "no ringcast binary: cargo build -p ringcast (or set RINGCAST_BIN)"

# shellcheck source=../venv.sh
source "$root/deploy/venv.sh"
deploy_venv "$root" || fail "python venv (deploy/requirements.txt)"

if ! command -v kubectl >/dev/null; then
    [[ $(id -u) == 0 ]] || fail "kubectl is not installed and this is not root: apt-get install kubernetes-client"
    { timeout 300 apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive timeout 300 \
            apt-get install -y -qq --no-install-recommends kubernetes-client; } >"$work/apt.log" 2>&1 ||
        { tail -20 "$work/apt.log"; fail "apt-get install kubernetes-client (kubectl)"; }
    command -v kubectl >/dev/null || fail "kubernetes-client installed but no kubectl on the PATH"
fi
{
    # A kubeconfig naming a closed loopback port: kustomize needs no server,
    # and nothing may be sent anywhere else.
    printf '%s\n' 'apiVersion: v1' 'kind: Config' \
        'clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]' \
        'contexts: [{name: none, context: {cluster: none, user: none}}]' \
        'users: [{name: none, user: {}}]' 'current-context: none' >"$work/kubeconfig"
    KUBECONFIG=$work/kubeconfig timeout 30 kubectl kustomize "$folder" >"$work/kustomized.yaml" 2>&1 ||
        { cat "$work/kustomized.yaml"; fail "kubectl kustomize deploy/kubernetes"; }
    kinds=$(sed -n 's/^kind: //p' "$work/kustomized.yaml" | sort | paste -sd, -)
    [[ -n $kinds ]] || fail "kubectl kustomize deploy/kubernetes printed no resources"
    ok "kubectl kustomize deploy/kubernetes builds: $kinds"
}

{ timeout 120 "$PY" "$folder/check.py" "$root" "$bin" | tee "$work/kubernetes.out"; } || fail "deploy/kubernetes checks"
passed=$((passed + $(grep -c '^ok: ' "$work/kubernetes.out")))
echo "deploy/kubernetes: $passed passed, 0 failed"
