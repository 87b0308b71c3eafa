#!/usr/bin/env bash
# Dockerfile and .dockerignore: checked without a container engine
# (deploy/docker/check.py parses the Dockerfile: multi-stage, the binary only,
# a non-root numeric USER that is the Deployment's runAsUser, the exec-form
# entrypoint `ringcast serve` at the path the Deployment runs, the exposed
# port, the version tag deploy/kubernetes names, a build context without
# target/), then the binary run the way the image runs it. Where an engine
# answers (`docker info`), the image is also built and started, and its
# /healthz must answer 200.
#
# Usage: bash deploy/docker/test.sh. Uses $RINGCAST_BIN, else
# target/release/ringcast, else target/debug/ringcast (never builds one).
# Needs python3 (3.11+: tomllib) and git. One line per check; exits 1 on the
# first failure. About a second without an engine.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$root/target/tmp/deploy/docker
fail() { echo "FAIL: $*"; exit 1; }
mkdir -p "$work"

bin=${RINGCAST_BIN:-}
for candidate in "$root/target/release/ringcast" "$root/target/debug/ringcast"; do
    [[ -z $bin && -x $candidate ]] && bin=$candidate
done
[[ -n $bin && -x $bin ]] || fail "no ringcast binary: cargo build -p ringcast (or set RINGCAST_BIN)"

{ timeout 120 python3 "$root/deploy/docker/check.py" "$root" "$bin" | tee "$work/docker.out"; } ||
    fail "Dockerfile checks"
passed=$(grep -c '^ok: ' "$work/docker.out")

if command -v docker >/dev/null && timeout 20 docker info >/dev/null 2>&1; then
    tag=ringcast:deploy-test
    timeout 1800 docker build -t "$tag" "$root" >"$work/build.log" 2>&1 ||
        { tail -30 "$work/build.log"; fail "docker build"; }
    echo "ok: docker build -t $tag ."
    container=$(docker run -d --rm -p 127.0.0.1::8080 "$tag")
    trap 'docker stop -t 15 "$container" >/dev/null 2>&1 || true' EXIT
    port=$(docker port "$container" 8080/tcp | head -1 | sed 's/.*://')
    for _ in $(seq 50); do
        curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
        sleep 0.2
    done
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { docker logs "$container"; fail "the image's /healthz"; }
    [[ $(docker inspect -f '{{.Config.User}}' "$tag") != @(|root|0|0:0) ]] || fail "the image runs as root"
    echo "ok: the image runs as $(docker inspect -f '{{.Config.User}}' "$tag") and /healthz answers 200"
    passed=$((passed + 2))
else
    echo "note: no container engine answers here; the image is checked, not built"
fi
echo "deploy/docker: $passed passed, 0 failed"
