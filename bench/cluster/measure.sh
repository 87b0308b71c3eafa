#!/usr/bin/env bash
# The memory engine against the Redis engine, in one run, on loopback:
# `ringcast-load fanout` (publish → delivery latency, deliveries/s) against
#   1. memory: one node, publishers and subscribers on it;
#   2. redis: two nodes on one redis-server, subscribers on node A and
#      publishers on node B (`--publish-url`), so every delivery crosses
#      nodes through Redis;
# and, for the Redis run, the Redis commands per publish and per delivered
# message from `INFO commandstats` (reset just before the load starts).
#
# Usage: bash bench/cluster/measure.sh
# Needs target/release/{ringcast,ringcast-load} (cargo build --release -p
# ringcast -p ringcast-tools) and redis-server / redis-cli on PATH.
# SUBS, CHANNELS, RATE, DURATION, SIZE override the load (defaults below).
# Everything started is stopped by PID on exit; reports land in
# target/tmp/cluster-measure/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$root/target/tmp/cluster-measure
bin=${RINGCAST_BIN:-$root/target/release/ringcast}
load=${LOAD_BIN:-$root/target/release/ringcast-load}
SUBS=${SUBS:-1000} CHANNELS=${CHANNELS:-10} RATE=${RATE:-200} DURATION=${DURATION:-10s} SIZE=${SIZE:-64}
pids=()
# Nodes start in a command substitution (a subshell): their PIDs go to files.
cleanup() {
    for p in "${pids[@]}" $(cat "$work"/*.pid 2>/dev/null); do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
rm -rf "$work" && mkdir -p "$work"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done
redis() { redis-cli -p "$redis_port" "$@"; }

# node NAME FLAGS...: one worker on a loopback port; prints its address.
node() {
    local name=$1 line=
    shift
    "$bin" serve --listen 127.0.0.1:0 --workers 1 --no-pin --set limits.command_rate=0 \
        "$@" >"$work/$name.out" 2>"$work/$name.log" &
    echo $! >"$work/$name.pid"
    for _ in $(seq 200); do
        line=$(head -1 "$work/$name.out" 2>/dev/null || true)
        [[ $line == "ringcast listening on "* ]] && break
        sleep 0.05
    done
    [[ $line == "ringcast listening on "* ]] || { cat "$work/$name.log"; exit 1; }
    echo "${line#ringcast listening on }"
}

fanout() {
    local label=$1 url=$2
    shift 2
    "$load" fanout --url "ws://$url/ws" --subscribers "$SUBS" --channels "$CHANNELS" \
        --publishers 2 --rate "$RATE" --size "$SIZE" --duration "$DURATION" --quiet \
        --label "$label" --json "$work/$label.json" "$@" | tee "$work/$label.txt"
}

mem=$(node memory)
echo "== memory engine: one node ($mem)"
fanout memory "$mem"

url="redis://127.0.0.1:$redis_port/0"
a=$(node redis-a --set engine.kind=redis --set "engine.redis_url=$url")
b=$(node redis-b --set engine.kind=redis --set "engine.redis_url=$url")
echo "== redis engine: subscribers on node A ($a), publishers on node B ($b)"
redis config resetstat >/dev/null
fanout redis "$a" --publish-url "ws://$b/ws"
redis info commandstats >"$work/commandstats.txt"

python3 - "$work" <<'PY'
import json, re, sys
work = sys.argv[1]
calls = {}
for line in open(f"{work}/commandstats.txt"):
    m = re.match(r"cmdstat_([^:]+):calls=(\d+)", line.strip())
    if m:
        calls[m.group(1)] = int(m.group(2))
publishes = calls.get("spublish", 0) or calls.get("publish", 0)
total = sum(calls.values())
report = json.load(open(f"{work}/redis.json"))
delivered = report.get("counts", {}).get("received", 0)
print("== redis INFO commandstats during the redis run")
print(" ".join(f"{k}={v}" for k, v in sorted(calls.items())))
print(f"publishes (spublish calls): {publishes}; all commands: {total}")
if publishes:
    print(f"redis commands per publish: {total / publishes:.2f}")
if delivered:
    print(f"redis commands per delivered message: {total / delivered:.4f} ({delivered} delivered)")
PY
