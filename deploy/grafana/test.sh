#!/usr/bin/env bash
# deploy/grafana/ringcast.json: the dashboard imports into Grafana 10+ (schema
# version, a Prometheus datasource variable used by every panel, no overlapping
# panels) and every metric and label its PromQL queries use is one a running
# ringcast really exports: the script starts `ringcast serve` on a loopback
# port, scrapes /metrics and compares (deploy/grafana/check.py says how the
# queries are parsed). Then it checks that the check fails on copies of the
# dashboard with a made-up metric, a counter read as a histogram and a
# misspelt label.
#
# Usage: bash deploy/grafana/test.sh [DASHBOARD.json]  (default
# deploy/grafana/ringcast.json). Uses $RINGCAST_BIN, else
# target/release/ringcast, else target/debug/ringcast (never builds one).
# Needs python3 only (standard library). One line per check; exits 1 on the
# first failure. About a second.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dashboard=${1:-$root/deploy/grafana/ringcast.json}
work=$root/target/tmp/deploy/grafana
fail() { echo "FAIL: $*"; exit 1; }
mkdir -p "$work"

bin=${RINGCAST_BIN:-}
for candidate in "$root/target/release/ringcast" "$root/target/debug/ringcast"; do
    [[ -z $bin && -x $candidate ]] && bin=$candidate
done
[[ -n $bin && -x $bin ]] || fail "no ringcast binary: cargo build -p ringcast (or set RINGCAST_BIN)"

{ timeout 120 python3 "$root/deploy/grafana/check.py" "$bin" "$dashboard" | tee "$work/grafana.out"; } ||
    fail "deploy/grafana checks"
echo "deploy/grafana: $(grep -c '^ok: ' "$work/grafana.out") passed, 0 failed"
