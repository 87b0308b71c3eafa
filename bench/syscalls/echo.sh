#!/usr/bin/env bash
# System calls per echoed message: a closed-loop echo (1,000 connections, one
# message in flight each) against a one-worker server on CPU 0, the load on
# CPU 1, and `perf stat` counting the server's system calls over a window.
# Messages come from the server's /metrics over the same window.
#
#   bash bench/syscalls/echo.sh [BIN] [-- extra serve flags, e.g. --force-epoll]
#   RECORD=1 bash bench/syscalls/echo.sh ...   # where the CPU goes instead:
#       `perf record` of the server over the window, server CPU per message
#       (utime + stime from /proc), and each top symbol's share of it in µs
#
# Env: CONNS (1000), SIZE (1024 bytes), WINDOW (5 s), LOAD
# (target/release/ringcast-load). Needs `perf` and the syscalls tracepoints
# (run as root, or with kernel.perf_event_paranoid low enough to trace
# another process). Every loop is bounded; the generator stops by itself.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-target/release/ringcast}
shift || true
[ "${1:-}" = "--" ] && shift
conns=${CONNS:-1000}
size=${SIZE:-1024}
window=${WINDOW:-5}
load=${LOAD:-target/release/ringcast-load}
[ -x "$load" ] || cargo build --release -q -p ringcast-tools --bin ringcast-load
[ -x "$bin" ] || cargo build --release -q -p ringcast

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp)
taskset -c 0 "$bin" serve --listen "127.0.0.1:$port" --workers 1 --no-pin "$@" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log" "$log.perf" "$log.data"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
grep -o 'driver=[^ ]*.*' "$log" | head -1 || true

messages() {
    curl -s "http://127.0.0.1:$port/metrics" | awk '/^ringcast_messages_received_total/ {s+=$2} END {print s+0}'
}
taskset -c 1 "$load" echo --url "ws://127.0.0.1:$port/echo" --connections "$conns" --inflight 1 \
    --size "$size" --warmup 2s --duration "$((window + 4))s" --quiet >/dev/null 2>&1 &
gen=$!
sleep 3
before=$(messages)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
if [ "${RECORD:-0}" = 1 ]; then
    ticks=$(cpu_ticks)
    perf record -q -F 2999 -g -p "$server" -o "$log.data" -- sleep "$window" 2>/dev/null
    ticks=$(( $(cpu_ticks) - ticks ))
    after=$(messages)
    wait $gen || true
    msgs=$((after - before))
    us=$(python3 -c "print(f'{$ticks / $(getconf CLK_TCK) * 1e6 / max($msgs, 1):.2f}')")
    echo "echoed messages in the window: $msgs; server CPU per message: $us µs"
    echo "-- by where it ran (share of samples, µs per message):"
    perf report -i "$log.data" --no-children --sort dso --stdio 2>/dev/null \
        | awk -v us="$us" '/^ +[0-9.]+%/ {p=$1; sub("%","",p); printf "  %6.2f%%  %5.2f µs  %s\n", p, p*us/100, $2}' | head -8
    echo "-- top symbols (self):"
    perf report -i "$log.data" --no-children --sort sym --stdio 2>/dev/null \
        | awk -v us="$us" '/^ +[0-9.]+%/ {p=$1; sub("%","",p); $1=""; $2=""; printf "  %6.2f%%  %5.2f µs %s\n", p, p*us/100, $0}' | head -${TOP:-30}
    rm -f "$log.data"
    exit 0
fi
events=raw_syscalls:sys_enter
for call in recvfrom sendto sendmsg io_uring_enter epoll_wait epoll_pwait read write; do
    events="$events,syscalls:sys_enter_$call"
done
perf stat -x, -e "$events" -p "$server" -o "$log.perf" -- sleep "$window"
after=$(messages)
wait $gen || true
python3 - "$log.perf" "$((after - before))" <<'PY'
import sys
path, msgs = sys.argv[1], int(sys.argv[2])
print(f"echoed messages in the window: {msgs}")
for line in open(path):
    parts = line.strip().split(",")
    if len(parts) < 3 or not parts[0].replace(".", "").isdigit():
        continue
    count, name = int(float(parts[0])), parts[2]
    name = "all system calls" if name == "raw_syscalls:sys_enter" else name.split("sys_enter_")[-1]
    if count:
        print(f"  {name:<18} {count:>10}  {count / max(msgs, 1):.3f} per message")
PY
