#!/usr/bin/env bash
# How long an event-loop turn takes while a worker holds many idle
# WebSocket connections: the histogram ringcast_loop_turn_duration_seconds
# over a window after every connection is open. With a timer sweep that
# walks every connection, the periodic sweep shows as turns far above the
# rest; with the deadline heap it must not.
#
#   bash bench/timers/idle-turns.sh [BIN ...]     (default target/release/ringcast)
#
# Env: CONNS (19000), WINDOW (20 s), LOAD (target/release/ringcast-load),
# SERVE_FLAGS (more `ringcast serve` flags, e.g. "--set io_uring.socket_io=completion").
# One worker, on CPU 0; the generator on CPU 1. Loopback only; the
# generator holds the connections for a bounded time and exits by itself.
set -euo pipefail
cd "$(dirname "$0")/../.."
conns=${CONNS:-19000}
window=${WINDOW:-20}
load=${LOAD:-target/release/ringcast-load}
[ $# -gt 0 ] || set -- target/release/ringcast
[ -x "$load" ] || cargo build --release -q -p ringcast-tools --bin ringcast-load

turns() { # url -> "count sum le=bucket:count ..." (cumulative)
  curl -s "$1" | awk '/^ringcast_loop_turn_duration_seconds_(bucket|count|sum)/'
}

for bin in "$@"; do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  taskset -c 0 "$bin" serve --listen "127.0.0.1:$port" --workers 1 --no-pin ${SERVE_FLAGS:-} >/tmp/idle-turns-server.log 2>&1 &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  hold=$(( window + conns / 4000 + 10 ))
  taskset -c 1 "$load" connect --url "ws://127.0.0.1:$port/ws" --connections "$conns" \
    --rate 4000 --hold "${hold}s" --source 127.0.0.2-127.0.0.9 --threads 1 >/tmp/idle-turns-load.log 2>&1 &
  gen=$!
  # Wait until every connection is open (bounded), then let it settle.
  for _ in $(seq 120); do
    open=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^ringcast_connections\{/ {s+=$2} END {print s+0}')
    [ "$open" -gt "$conns" ] && break
    sleep 0.5
  done
  sleep 2
  before=$(turns "http://127.0.0.1:$port/metrics")
  sleep "$window"
  after=$(turns "http://127.0.0.1:$port/metrics")
  echo "== $bin: $open idle connections, ${window}s window"
  python3 - "$before" "$after" <<'PY'
import re, sys
def parse(text):
    d = {}
    for line in text.splitlines():
        m = re.match(r'ringcast_loop_turn_duration_seconds_(\w+)(\{[^}]*\})?\s+(\S+)', line)
        if not m:
            continue
        kind, labels, v = m.group(1), m.group(2) or "", float(m.group(3))
        le = re.search(r'le="([^"]+)"', labels)
        key = (kind, le.group(1) if le else "")
        d[key] = d.get(key, 0) + v  # summed over workers
    return d
b, a = parse(sys.argv[1]), parse(sys.argv[2])
n = a[("count", "")] - b[("count", "")]
s = a[("sum", "")] - b[("sum", "")]
print(f"turns {n:.0f}, mean {s / max(n, 1) * 1e6:.1f} us")
prev = 0.0
for (kind, le), v in sorted(((k, v) for k, v in a.items() if k[0] == "bucket"),
                            key=lambda kv: float("inf") if kv[0][1] == "+Inf" else float(kv[0][1])):
    c = v - b.get((kind, le), 0)
    if c - prev > 0:
        print(f"  <= {le:>10} s: {c - prev:.0f}")
    prev = c
PY
  wait $gen || true
  kill $server 2>/dev/null || true
  wait $server 2>/dev/null || true
done
