#!/usr/bin/env bash
# ringcast side by side with its peers: one command.
#
#   bash bench/peers/run.sh            full run: 3 interleaved rounds, ~15 min
#   bash bench/peers/run.sh --quick    smoke run for CI: 1 short round, ~2-3 min
#   bash bench/peers/run.sh --uws '/path/to/uws-server {port}'   another uWebSockets build instead of ours
#   options: --runs N, --only NAME[,NAME] (peers beside ringcast), --scenarios ID[,ID], --out DIR
#
# Builds (release) ringcast, ringcast-load and the Rust peer servers, builds
# the uWebSockets peer from its C++ sources (bench/peers/uws/build.sh), installs
# Node's `ws` with npm under target/peers/node, then runs peers.py: each
# server alone on CPU 0, driven by ringcast-load on CPU 1. The table goes to
# stdout and target/peers/report.md. bench/README.md explains the figures.
set -euo pipefail
cd "$(dirname "$0")/../.."

for tool in taskset python3 node npm make g++; do
    command -v "$tool" >/dev/null || { echo "run.sh: needs $tool" >&2; exit 1; }
done
if [ "$(nproc)" -lt 2 ]; then
    echo "run.sh: needs 2 CPUs (server on CPU 0, load generator on CPU 1)" >&2
    exit 1
fi

echo "== build (release): ringcast, ringcast-load, peer servers"
cargo build --release -q -p ringcast -p ringcast-tools -p ringcast-bench --bins

echo "== build: uWebSockets peer (bench/peers/uws)"
bash bench/peers/uws/build.sh

node_dir=target/peers/node
mkdir -p "$node_dir"
cp bench/peers/node/package.json bench/peers/node/package-lock.json bench/peers/node/server.mjs "$node_dir/"
if ! cmp -s bench/peers/node/package-lock.json "$node_dir/node_modules/.package-lock.json.installed" 2>/dev/null; then
    echo "== npm ci (ws) in $node_dir"
    (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp bench/peers/node/package-lock.json "$node_dir/node_modules/.package-lock.json.installed"
fi

# 19,000 idle connections need as many descriptors in the server and in the
# generator: raise the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

exec python3 bench/peers/peers.py "$@"
