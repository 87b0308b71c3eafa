#!/usr/bin/env bash
# TLS (wss://) echo on ringcast's two socket paths, readiness and completion,
# interleaved: server on CPU 0 (`--workers 1`), wss-echo on CPU 1, 1,000
# connections x 1 KiB closed loop by default. Each round runs each path
# twice: once for throughput and server CPU per message (/proc), once with
# `perf stat -e raw_syscalls:sys_enter -p PID` over 8 s of the window for
# system calls per message; then once with the connections idle after the
# upgrade, for the server's resident memory per idle wss:// connection.
# The completion path's idle run is made twice: with the default receive
# buffer pool (up to 4,096 x 4 KiB per worker, 64 handed out at start and
# doubled when a burst takes them all, resident as the kernel first fills
# each: a per-core cost that shows up divided by the connections) and with
# a pool of at most 256. Prints one line per run.
#
# Usage: bash bench/tls/echo.sh [ROUNDS=3] [CONNECTIONS=1000] [SIZE=1024]
# Needs: cargo build --release -p ringcast --bin ringcast -p ringcast-bench --bin wss-echo
set -euo pipefail
ROUNDS=${1:-3}
CONNECTIONS=${2:-1000}
SIZE=${3:-1024}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$ROOT/target/release
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ulimit -n 20000
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost \
  -addext basicConstraints=critical,CA:FALSE \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
PORT=19443

run() { # path, mode (0: CPU, 1: perf, idle), extra --set flags
  local path=$1 perf=$2
  shift 2
  taskset -c 0 "$BIN/ringcast" serve --listen 127.0.0.1:$PORT --workers 1 \
    --set server.tls_cert="$WORK/cert.pem" --set server.tls_key="$WORK/key.pem" \
    --set io_uring.socket_io="$path" "$@" >"$WORK/server.log" 2>&1 &
  local server=$!
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
    sleep 0.05
  done
  local pid_flag=(--server-pid "$server")
  [ "$perf" = 1 ] && pid_flag=()
  [ "$perf" = idle ] && pid_flag+=(--idle 1)
  taskset -c 1 "$BIN/wss-echo" 127.0.0.1:$PORT --ca "$WORK/cert.pem" \
    --connections "$CONNECTIONS" --size "$SIZE" --warmup 3 --duration 10 \
    "${pid_flag[@]}" >"$WORK/load.json" 2>"$WORK/load.err" &
  local load=$!
  local syscalls=""
  if [ "$perf" = 1 ]; then
    while ! grep -q "window start" "$WORK/load.err"; do sleep 0.1; done
    sleep 1
    syscalls=$(perf stat -x, -e raw_syscalls:sys_enter -p "$server" -- sleep 8 2>&1 \
      | awk -F, '/raw_syscalls/ {print $1}')
  fi
  wait "$load"
  kill -INT "$server"; wait "$server" || true
  local line
  line=$(cat "$WORK/load.json")
  if [ -n "$syscalls" ]; then
    local per_s
    per_s=$(sed 's/.*"per_s":\([0-9.]*\).*/\1/' <<<"$line")
    echo "$path perf: $line syscalls_8s=$syscalls syscalls_per_message=$(awk -v s="$syscalls" -v r="$per_s" 'BEGIN{printf "%.3f", s/(r*8)}')"
  else
    echo "$path $*: $line"
  fi
  grep -m1 "worker started" "$WORK/server.log" | grep -o "socket_io.*" >&2 || true
}

echo "# $(date -u +%FT%TZ) $(uname -r), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
  for path in readiness completion; do run "$path" 0; done
  for path in completion readiness; do run "$path" 1; done
  for path in readiness completion; do run "$path" idle; done
  run completion idle --set io_uring.recv_buffers=256
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
