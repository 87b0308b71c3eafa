#!/usr/bin/env bash
# Measures the server's CPU at several publish rates and fits the capacity
# model's CPU costs to it: cores = idle + deliveries/s × per frame + writes/s
# × per write (CPU_IDLE, CPU_PER_FRAME and CPU_PER_WRITE in
# core/src/config/capacity.rs).
#
# For each rate: a fresh server (`serve --profile PROFILE --set
# server.workers=1`, pinned to CPU 0), `ringcast-load fanout` with 1,000
# subscribers of one channel on CPU 1, then WINDOWS windows of SECONDS s.
# Per window, from the server itself:
#   deliveries      ringcast_deliveries_total in /metrics (summed over workers)
#   CPU             utime + stime of the server in /proc/PID/stat
#   pushes/write    ringcast_flushed_frames_total ÷ ringcast_flush_calls_total
# Prints one line per window, then the least-squares fit over all of them
# (and each window's residual against it).
#
# Usage: hardware-profiles/measure/cpu_fit.sh [RATE...]   (publishes/s; default 25 50 100 200 400 700)
#   RINGCAST_BIN, RINGCAST_LOAD_BIN  binaries (default: a fresh release build)
#   PROFILE (medium), WINDOWS (3), WINDOW_SECONDS (4), SUBSCRIBERS (1000)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "cpu_fit: FAIL: $*" >&2; exit 1; }
if [[ -z ${RINGCAST_BIN:-} ]]; then
    (cd "$root" && cargo build --release -q -p ringcast -p ringcast-tools --bin ringcast --bin ringcast-load) ||
        fail "cargo build --release"
fi
bin=${RINGCAST_BIN:-$root/target/release/ringcast}
load=${RINGCAST_LOAD_BIN:-$(dirname "$bin")/ringcast-load}
profile=${PROFILE:-medium}
windows=${WINDOWS:-3}
seconds=${WINDOW_SECONDS:-4}
subscribers=${SUBSCRIBERS:-1000}
rates=("$@")
((${#rates[@]})) || rates=(25 50 100 200 400 700)
[[ -x $bin && -x $load ]] || fail "no $bin or $load"
out=$(mktemp -d /tmp/ringcast-cpufit.XXXXXX)
hz=$(getconf CLK_TCK)

server_pid=
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    server_pid=
    return 0
}
trap cleanup EXIT
metric() {
    timeout 10 curl -sf "http://$addr/metrics" |
        awk -v m="$1" '$1 == m || index($1, m "{") == 1 {s += $2} END {printf "%.0f\n", s}'
}
sample() {
    echo "$(metric ringcast_deliveries_total) $(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$server_pid/stat") $(date +%s.%N) $(metric ringcast_flush_calls_total) $(metric ringcast_flushed_frames_total)"
}

echo "# $(date -u +%FT%TZ) $(uname -r) profile $profile, 1 worker on CPU 0, fanout on CPU 1, $subscribers subscribers, 64-byte data"
echo "# rate deliveries/s us_per_delivery pushes_per_write cores"
: >"$out/points"
for rate in "${rates[@]}"; do
    : >"$out/server.out" # emptied by the parent: the redirection below runs in the child
    taskset -c 0 "$bin" serve --profile "$profile" --set server.workers=1 --set server.pin_workers=false \
        --set server.listen=127.0.0.1:0 >"$out/server.out" 2>"$out/server.log" &
    server_pid=$!
    addr=
    for _ in $(seq 200); do
        line=$(head -n1 "$out/server.out" 2>/dev/null || true)
        [[ $line == "ringcast listening on "* ]] && { addr=${line#ringcast listening on }; break; }
        sleep 0.05
    done
    [[ -n $addr ]] || fail "no listening line"
    duration=$((windows * seconds + 6))
    timeout $((duration + 60)) taskset -c 1 "$load" fanout --url "ws://$addr/ws" \
        --subscribers "$subscribers" --publishers $(((rate + 79) / 80)) --rate "$rate" --size 64 \
        --warmup 2s --duration "${duration}s" --source 127.0.0.2-127.0.0.5 --quiet \
        --json "$out/fanout.json" >"$out/fanout.out" 2>&1 &
    fanout_pid=$!
    d=0
    for _ in $(seq 600); do
        d=$(metric ringcast_deliveries_total)
        ((d >= subscribers)) && break
        sleep 0.1
    done
    ((d >= subscribers)) || fail "no deliveries at rate $rate"
    sleep 2
    read -r d0 c0 t0 f0 fr0 < <(sample)
    for _ in $(seq "$windows"); do
        sleep "$seconds"
        read -r d1 c1 t1 f1 fr1 < <(sample)
        awk -v r="$rate" -v d="$((d1 - d0))" -v c="$((c1 - c0))" -v hz="$hz" -v t0="$t0" -v t1="$t1" \
            -v f="$((f1 - f0))" -v fr="$((fr1 - fr0))" \
            'BEGIN {s = t1 - t0; if (d > 0 && f > 0) printf "%d %.0f %.3f %.2f %.3f\n", r, d / s, c / hz * 1e6 / d, fr / f, c / hz / s}' |
            tee -a "$out/points"
        d0=$d1 c0=$c1 t0=$t1 f0=$f1 fr0=$fr1
    done
    wait "$fanout_pid" || true
    cleanup
done

# Least squares of cores = idle + per frame × deliveries/s + per write ×
# writes/s (writes/s = deliveries/s ÷ pushes per write), and each window's
# µs per delivery against it.
python3 - "$out/points" <<'PY'
import sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
X = [[1.0, d / 1e6, d / p / 1e6] for _, d, _, p, _ in rows]
y = [c for *_, c in rows]
n = 3
A = [[sum(x[i] * x[j] for x in X) for j in range(n)] + [sum(x[i] * v for x, v in zip(X, y))] for i in range(n)]
for i in range(n):
    k = max(range(i, n), key=lambda r: abs(A[r][i]))
    A[i], A[k] = A[k], A[i]
    for r in range(n):
        if r != i:
            f = A[r][i] / A[i][i]
            A[r] = [a - f * b for a, b in zip(A[r], A[i])]
idle, frame, write = (A[i][n] / A[i][i] for i in range(n))
print(f"# fit over {len(rows)} windows: cores = {idle:.4f} + {frame:.3f} us x deliveries/s + {write:.3f} us x writes/s")
for (rate, d, us, p, c), x in zip(rows, X):
    fit = idle + frame * x[1] + write * x[2]
    print(f"#   rate {rate:.0f}: {d:.0f} deliveries/s, {p:.2f} pushes/write: {c:.3f} cores, fit {fit:.3f} ({(c - fit) * 100 / fit:+.0f} %)")
PY
echo "# points: $out/points"
