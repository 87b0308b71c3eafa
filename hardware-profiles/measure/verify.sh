#!/usr/bin/env bash
# Checks the capacity model against a run: scales a profile down to this box,
# asks `ringcast profile capacity --json` what it should hold, runs
# `ringcast-load connect` and `ringcast-load fanout` at that capacity, and
# prints predicted vs measured for
#
#   - server RSS per idle connection   (connect: RSS growth ÷ connections)
#   - kernel memory per socket         (connect: Slab growth in /proc/meminfo
#                                       ÷ the TCP sockets the box gained, both
#                                       ends being on this box)
#   - server RSS per history entry     (history_mem.py on a fresh server:
#                                       RSS growth ÷ entries acknowledged;
#                                       64-byte data, then 4 KiB)
#   - server RSS per subscription      (subscription_mem.py on a fresh
#                                       server: RSS growth ÷ subscriptions)
#   - fixed RSS                        (the fresh server's VmRSS; a debug
#                                       binary's is larger, not checked)
#   - deliveries/s                     (fanout at the predicted rate, counted
#                                       by the server: ringcast_deliveries_total
#                                       in /metrics, before and after a window)
#   - server CPU at that rate          (utime + stime of the server over the
#                                       same window, in cores, vs the model's
#                                       idle + deliveries/s × its CPU per
#                                       delivery at the pushes per write the
#                                       run had: ringcast_flushed_frames_total
#                                       ÷ ringcast_flush_calls_total)
#
# The memory figures compare the model's per-connection costs, not its
# totals: the totals add full histories and slow consumers, which an idle
# run does not have. The model's CPU per delivery is a cost per write plus a
# cost per frame; how many pushes a write carries depends on how fast
# subscribers read, so the check is the cost at the batching measured, and
# the deliveries/s check is that the server delivers the predicted rate.
#
# and exits 1 when one differs from its prediction by more than the margin
# (VERIFY_MARGIN, percent, default 20).
#
# Scaling to this box: one worker, not pinned by the server, the process
# pinned to CPU 0 with taskset and the load generator to CPU 1 (so the box
# needs 2 CPUs); every other key as the profile sets it, plus the --set
# overrides given here, which the prediction gets too. The prediction is
# computed for 1 core, this box's MemTotal and its fd hard limit (20,000 on
# the CI box), which bounds connections: `connect` opens that many (the
# model's fd bound, the limit minus its spare) from source addresses
# 127.0.0.2 upwards, enough of them to stay under the profile's
# limits.max_connections_per_ip and one address's ephemeral ports. The fan-out
# is 1,000 subscribers of one channel and a publish rate that makes
# their deliveries/s the predicted figure, split over publishers so each stays
# under limits.command_rate.
#
# The CPU figures are meaningful with a release build only: with a debug
# server (a path containing /debug/) they are printed but not checked, and
# the deliveries/s it reaches are not either.
#
# Usage:
#   hardware-profiles/measure/verify.sh [--short] [--profile NAME] [--set KEY=VALUE]...
#     --short    for CI (under 60 s): the memory checks and deliveries/s, with
#                three 3 s fan-out windows; the server's CPU is printed, not
#                checked (its run-to-run spread on a shared box exceeds the
#                margin). The full run checks it too, over three 5 s windows.
#                Both open the fd bound's connections.
#   RINGCAST_BIN       server binary (default: target/release/ringcast, built
#                      first with cargo build --release; a given one must be
#                      newer than every source file)
#   RINGCAST_LOAD_BIN  load generator (default ringcast-load beside RINGCAST_BIN)
#   VERIFY_MARGIN      allowed difference, percent (default 20)
#   VERIFY_OUT         directory for the JSON of each step (default a temp dir)
#
# Every wait is a bounded loop; every command runs under `timeout`.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

short=0
profile=medium
sets=()
while (($#)); do
    case $1 in
        --short) short=1 ;;
        --profile) profile=$2; shift ;;
        --set) sets+=(--set "$2"); shift ;;
        *) echo "usage: $0 [--short] [--profile NAME] [--set KEY=VALUE]..." >&2; exit 2 ;;
    esac
    shift
done

fail() { echo "verify: FAIL: $*" >&2; exit 1; }
# The binaries: a release build of this tree, made (or found up to date) by
# cargo here, so the run never measures a stale binary. RINGCAST_BIN names
# another one; it is refused when a source file of the server or the load
# generator is newer than it.
if [[ -z ${RINGCAST_BIN:-} ]]; then
    echo "verify: cargo build --release -p ringcast -p ringcast-tools (up to date if nothing changed)"
    (cd "$root" && cargo build --release -q -p ringcast -p ringcast-tools --bin ringcast --bin ringcast-load) ||
        fail "cargo build --release"
fi
bin=${RINGCAST_BIN:-$root/target/release/ringcast}
load=${RINGCAST_LOAD_BIN:-$(dirname "$bin")/ringcast-load}
for b in "$bin" "$load"; do
    [[ -x $b ]] || continue
    newer=$(find "$root/core/src" "$root/tools/src" "$root/Cargo.lock" -newer "$b" -type f -print -quit)
    [[ -z $newer ]] || fail "$b is older than $newer: rebuild it (or leave RINGCAST_BIN unset)"
done
margin=${VERIFY_MARGIN:-20}
out=${VERIFY_OUT:-$(mktemp -d /tmp/ringcast-verify.XXXXXX)}
mkdir -p "$out"
[[ -x $bin ]] || fail "no server binary $bin (cargo build --release -p ringcast, or set RINGCAST_BIN)"
[[ -x $load ]] || fail "no load generator $load (cargo build --release -p ringcast-tools, or set RINGCAST_LOAD_BIN)"
(($(nproc) >= 2)) || fail "needs 2 CPUs (server on CPU 0, load on CPU 1), $(nproc) here"
release=1
[[ $bin == */debug/* ]] && release=0

# This box, scaled: the fd hard limit is the soft limit of both processes.
ulimit -n "$(ulimit -Hn)"
fd_limit=$(ulimit -n)
mem_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
scale=(--set server.workers=1 --set server.pin_workers=false)
box=(--cores 1 --memory "$((mem_kib * 1024))" --fd-limit "$fd_limit" --nic-gbit 10)

timeout 30 "$bin" profile capacity --profile "$profile" "${scale[@]}" "${sets[@]}" "${box[@]}" \
    --json >"$out/predicted.json" || fail "ringcast profile capacity"
p() { jq -r "$1" "$out/predicted.json"; }
key() { # key TABLE.FIELD: its value in `ringcast profile show` for this run's configuration
    timeout 30 "$bin" profile show --profile "$profile" "${scale[@]}" "${sets[@]}" |
        awk -v key="$1" '/^\[/ {table = substr($1, 2, length($1) - 2)} table "." $1 == key && $2 == "=" {print $3; exit}'
}
# A tier whose full histories alone exceed this box's memory (ultra's
# 1,000,000 channels) is scaled down in channels too: pubsub.max_channels
# becomes what fills a quarter of the memory budget (the model's 80 %) with
# full histories.
if (($(p .connections) == 0 && $(p .memory.history_bytes) > 0)); then
    channels=$(awk -v m="$((mem_kib * 1024))" -v pct=80 \
        -v h="$(p .memory.history_bytes)" -v c="$(key pubsub.max_channels)" \
        'BEGIN {printf "%d\n", m * pct / 100 / 4 / (h / c)}')
    [[ $channels =~ ^[0-9]+$ ]] && ((channels > 0)) || fail "cannot scale pubsub.max_channels ($channels)"
    scale+=(--set "pubsub.max_channels=$channels")
    echo "verify: $profile's full histories exceed this box's memory; scaled to pubsub.max_channels=$channels"
    timeout 30 "$bin" profile capacity --profile "$profile" "${scale[@]}" "${sets[@]}" "${box[@]}" \
        --json >"$out/predicted.json" || fail "ringcast profile capacity"
fi
pred_conns=$(p .connections)
pred_user=$(p .per_connection.idle_user_bytes)
pred_kernel=$(p .per_connection.idle_kernel_bytes)
pred_deliveries=$(p .deliveries_per_sec)
pred_us=$(p .cpu_us_per_delivery)
pred_fixed=$(p .memory.fixed_bytes)
pred_idle=$(p .costs.cpu_idle_cores_per_worker.value)
per_ip=$(key limits.max_connections_per_ip)
command_rate=$(key limits.command_rate)
[[ $per_ip =~ ^[0-9]+$ ]] || fail "limits.max_connections_per_ip not in \`profile show\` ($per_ip)"
[[ $command_rate =~ ^[0-9]+$ ]] || fail "limits.command_rate not in \`profile show\` ($command_rate)"

if ((short)); then
    conns=$pred_conns hold=3 window=3
else
    conns=$pred_conns hold=3 window=5
fi
((conns > 0)) || fail "the model predicts no connections for this box: $(p '.arithmetic | join("; ")')"
# Source addresses: under the per-IP cap (0 = off) and under 20,000 each
# (one address's ephemeral ports), at most 200.
per_source=20000
((per_ip > 0 && per_ip < per_source)) && per_source=$per_ip
source_range() { # source_range N: enough addresses for N connections, at most 200
    local n=$((($1 + per_source - 1) / per_source + 1))
    ((n <= 200)) || fail "$1 connections need $n source addresses (limits.max_connections_per_ip $per_ip)"
    echo "127.0.0.2-127.0.0.$((n + 1))"
}

subscribers=1000
rate=$(((pred_deliveries + subscribers / 2) / subscribers))
# Publishers: each under 80 % of the per-connection command rate (0 = off).
publishers=1
((command_rate > 0)) && publishers=$(((rate * 10 + command_rate * 8 - 1) / (command_rate * 8)))
((publishers >= 1)) || publishers=1

# --- the server ---------------------------------------------------------------
server_pid=
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    return 0
}
trap cleanup EXIT
start_server() { # a fresh server: sets server_pid and addr
    # Emptied here, not by the redirection below: that runs in the child,
    # and until it does this loop would read the previous server's address.
    : >"$out/server.out"
    taskset -c 0 "$bin" serve --profile "$profile" "${scale[@]}" "${sets[@]}" \
        --set server.listen=127.0.0.1:0 >"$out/server.out" 2>"$out/server.log" &
    server_pid=$!
    addr=
    for _ in $(seq 200); do
        line=$(head -n1 "$out/server.out" 2>/dev/null || true)
        [[ $line == "ringcast listening on "* ]] && { addr=${line#ringcast listening on }; break; }
        kill -0 "$server_pid" 2>/dev/null || { cat "$out/server.log" >&2; fail "the server exited at start"; }
        sleep 0.05
    done
    [[ -n $addr ]] || fail "the server printed no listening line in 10 s"
}
start_server

metric() { # metric NAME: the sum over the workers of NAME in /metrics
    timeout 10 curl -sf "http://$addr/metrics" |
        awk -v m="$1" '$1 == m || index($1, m "{") == 1 {s += $2} END {printf "%.0f\n", s}'
}
cpu_ticks() { awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$server_pid/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status"; }
slab_kib() { awk '/^Slab:/ {print $2}' /proc/meminfo; }
# Kernel memory per socket from two copies of /proc/slabinfo (root only):
# the bytes of the slab objects in every cache that grew by at least one
# object per four new TCP sockets (the socket, its inode, file, dentry,
# epoll entry and what they allocate), divided by the new TCP sockets. The
# slab is the whole box's, so what other processes do at the same time
# would count in /proc/meminfo's Slab; a cache grows this way only with
# sockets, and the division is by every socket the box gained.
slab_per_socket() { # slab_per_socket BEFORE AFTER: prints "BYTES SOCKETS"
    awk 'FNR == 1 {f++} f == 1 && NF > 4 {n[$1] = $2; next}
         f == 2 && $1 == "TCP" {socks = $2 - n["TCP"]}
         f == 2 && NF > 4 && ($1 in n) {d[$1] = $2 - n[$1]; size[$1] = $4}
         END {for (c in d) if (socks > 0 && d[c] * 4 >= socks) b += d[c] * size[c];
              printf "%.0f %d\n", (socks > 0 ? b / socks : 0), socks}' "$1" "$2"
}
wait_metric() { # wait_metric NAME MIN TENTHS: until NAME >= MIN, at most TENTHS × 0.1 s
    local v=0
    for _ in $(seq "$3"); do
        v=$(metric "$1")
        ((v >= $2)) && return 0
        sleep 0.1
    done
    echo "verify: $1 reached $v, not $2, in $(($3 / 10)) s" >&2
    return 1
}

fixed_kib=$(rss_kib)

# --- idle connections: server RSS and kernel memory per connection ---------------
# As the model's figure was measured: RSS growth of a fresh server ÷ the
# connections it holds. The first handshakes leave the allocator some MiB it
# freed but kept, whatever the count, so below the fd bound that residue
# weighs (3,000 connections: 4.2 KiB each; 10,000: 0.66-1.1 KiB; 18,976:
# 0.73-0.75 KiB) and the short form opens the fd bound too.
echo "verify: profile $profile scaled to 1 worker on CPU 0 (${sets[*]:-no --set}); $conns connections, load on CPU 1"
rate_c=5000
wait_gone() {
    for _ in $(seq 300); do
        (($(metric ringcast_websockets) == 0)) && return 0
        sleep 0.1
    done
    fail "connections still open 30 s after connect ended"
}
# The kernel sample is taken again (at most 3 runs) when other processes
# opened or closed more than 5 % as many TCP sockets meanwhile: the slab is
# the box's, and sockets closed elsewhere shrink the caches this run grows.
# The RSS figure is the first run's (a used server under-reports).
kernel_checked=1
for attempt in 1 2 3; do
    slab0=$(slab_kib)
    cat /proc/slabinfo >"$out/slabinfo.0" 2>/dev/null || true
    timeout $((conns / rate_c + hold + 60)) taskset -c 1 "$load" connect --url "ws://$addr/ws" \
        --connections "$conns" --rate "$rate_c" --hold "${hold}s" --settle 2s \
        --source "$(source_range "$conns")" --server-pid "$server_pid" \
        --json "$out/connect.json" >"$out/connect.out" 2>&1 &
    connect_pid=$!
    # Both ends of every connection are on this box: two sockets each.
    wait_metric ringcast_websockets "$conns" $(((conns / rate_c + 20) * 10)) ||
        { kill "$connect_pid" 2>/dev/null; fail "not every connection opened ($out/connect.out)"; }
    sleep 1
    slab1=$(slab_kib)
    cat /proc/slabinfo >"$out/slabinfo.1" 2>/dev/null || true
    wait "$connect_pid" || fail "ringcast-load connect failed: $(tail -5 "$out/connect.out")"
    opened=$(jq -r .opened "$out/connect.json")
    ((opened == conns)) || fail "connect opened $opened of $conns"
    ((attempt == 1)) && meas_user=$(jq -r '.server_rss.per_connection_kib * 1024 | round' "$out/connect.json")
    wait_gone
    sockets=$((2 * conns))
    if [[ ! -s $out/slabinfo.0 || ! -s $out/slabinfo.1 ]]; then
        # Not root: Slab in /proc/meminfo, over both ends of every connection.
        meas_kernel=$(((slab1 - slab0) * 1024 / sockets))
        kernel_how="Slab in /proc/meminfo over $sockets sockets (no /proc/slabinfo: disturbed by anything else running)"
        break
    fi
    read -r meas_kernel sockets < <(slab_per_socket "$out/slabinfo.0" "$out/slabinfo.1")
    kernel_how="slab objects of the caches that grew with the $sockets TCP sockets the box gained ($((2 * conns)) are this run's; run $attempt)"
    others=$((sockets - 2 * conns))
    ((others < 0)) && others=$((-others))
    ((others * 20 <= 2 * conns)) && break
    echo "verify: the box gained $sockets TCP sockets while this run opened $((2 * conns)): others are opening or closing sockets; sampling the kernel again" >&2
    ((attempt == 3)) && kernel_checked=0
done

# --- fan-out at the predicted deliveries/s --------------------------------------
# Three windows back to back, from 2 s after deliveries start, inside the
# fan-out's recorded duration; the median window (by measured ÷ predicted
# cores) is reported, so one window disturbed by something else
# on the box does not decide.
windows=3
duration=$((windows * window + 6))
timeout $((duration + 90)) taskset -c 1 "$load" fanout --url "ws://$addr/ws" \
    --subscribers "$subscribers" --publishers "$publishers" --rate "$rate" --size 64 \
    --warmup 2s --duration "${duration}s" --source "$(source_range $((subscribers + publishers)))" --quiet \
    --json "$out/fanout.json" >"$out/fanout.out" 2>&1 &
fanout_pid=$!
d_start=$(metric ringcast_deliveries_total)
wait_metric ringcast_deliveries_total $((d_start + subscribers)) 600 ||
    { kill "$fanout_pid" 2>/dev/null; fail "no deliveries within 60 s (fanout: $out/fanout.out)"; }
sleep 2
hz=$(getconf CLK_TCK)
sample() { echo "$(metric ringcast_deliveries_total) $(cpu_ticks) $(date +%s.%N) $(metric ringcast_flush_calls_total) $(metric ringcast_flushed_frames_total)"; }
: >"$out/windows.txt"
read -r d0 c0 t0 f0 fr0 < <(sample)
for _ in $(seq "$windows"); do
    sleep "$window"
    read -r d1 c1 t1 f1 fr1 < <(sample)
    # deliveries/s, µs per delivery, cores, pushes per write
    read -r w_deliveries w_us w_share w_fpf < <(awk -v d="$((d1 - d0))" -v c="$((c1 - c0))" \
        -v hz="$hz" -v t0="$t0" -v t1="$t1" -v f="$((f1 - f0))" -v fr="$((fr1 - fr0))" \
        'BEGIN {s = t1 - t0; printf "%.0f %.3f %.3f %.2f\n", d / s, c / hz * 1e6 / (d ? d : 1), c / hz / s, fr / (f ? f : 1)}')
    # The model's CPU per delivery at the batching this window had, and the
    # cores it predicts at this window's rate: idle + rate × that.
    w_pred=$(timeout 30 "$bin" profile capacity --profile "$profile" "${scale[@]}" "${sets[@]}" \
        "${box[@]}" --pushes-per-write "$w_fpf" --json | jq -r .cpu_us_per_delivery) ||
        fail "ringcast profile capacity --pushes-per-write $w_fpf"
    w_pred_share=$(awk -v i="$pred_idle" -v r="$w_deliveries" -v us="$w_pred" 'BEGIN {printf "%.3f", i + r * us / 1e6}')
    echo "$(awk -v m="$w_share" -v p="$w_pred_share" 'BEGIN {printf "%.4f", m / p}') $w_deliveries $w_us $w_share $w_fpf $w_pred $w_pred_share" \
        >>"$out/windows.txt"
    d0=$d1 c0=$c1 t0=$t1 f0=$f1 fr0=$fr1
done
wait "$fanout_pid" || echo "verify: ringcast-load fanout exited non-zero: $(tail -3 "$out/fanout.out")" >&2
read -r _ meas_deliveries meas_us cpu_share frames_per_flush pred_us_run pred_share < <(sort -n "$out/windows.txt" | sed -n 2p)

# --- history: server RSS per entry, on a fresh server --------------------------
# hardware-profiles/measure/history_mem.py: 400 publishers, each 200 publishes
# over 2 channels of its own (at most the history size per channel), RSS
# growth ÷ the entries the server acknowledged.
cleanup
start_server
history_size=$(key pubsub.history_size)
[[ $history_size =~ ^[0-9]+$ ]] || fail "pubsub.history_size not in \`profile show\` ($history_size)"
(cd "$root/hardware-profiles/measure" && timeout 120 taskset -c 1 python3 history_mem.py \
    --port "${addr##*:}" --pid "$server_pid" --conns 400 --history-size "$history_size") \
    >"$out/history.json" 2>"$out/history.err" || fail "history_mem.py: $(tail -3 "$out/history.err")"
meas_entry=$(jq -r .bytes_per_entry "$out/history.json")
pred_entry=$(p .history_entry_bytes)

# The same with 4 KiB data (20,000 entries), where the allocator's size
# classes weigh: the model puts a 4,175-byte frame in a 5,120-byte block.
cleanup
start_server
(cd "$root/hardware-profiles/measure" && timeout 120 taskset -c 1 python3 history_mem.py \
    --port "${addr##*:}" --pid "$server_pid" --conns 200 --per-conn 100 --data 4096 \
    --history-size "$history_size") \
    >"$out/history4k.json" 2>"$out/history4k.err" || fail "history_mem.py --data 4096: $(tail -3 "$out/history4k.err")"
meas_entry4k=$(jq -r .bytes_per_entry "$out/history4k.json")
pred_entry4k=$(timeout 30 "$bin" profile capacity --profile "$profile" "${scale[@]}" "${sets[@]}" \
    "${box[@]}" --message-size 4096 --json | jq -r .history_entry_bytes) ||
    fail "ringcast profile capacity --message-size 4096"

# --- subscriptions: server RSS per subscription, on a fresh server -----------
# hardware-profiles/measure/subscription_mem.py: 400 connections each
# subscribing to 128 channels, RSS growth ÷ the 51,200 subscriptions.
cleanup
start_server
(cd "$root/hardware-profiles/measure" && timeout 60 taskset -c 1 python3 subscription_mem.py \
    --port "${addr##*:}" --pid "$server_pid" --conns 400 --subs 128) \
    >"$out/subscriptions.json" 2>"$out/subscriptions.err" || fail "subscription_mem.py: $(tail -3 "$out/subscriptions.err")"
meas_sub=$(jq -r .bytes_per_subscription "$out/subscriptions.json")
pred_sub=$(p .costs.subscription_bytes.value)

# --- report -------------------------------------------------------------------------
status=0
row() { # row WHAT PREDICTED MEASURED CHECKED(1/0)
    local diff verdict
    diff=$(awk -v p="$2" -v m="$3" 'BEGIN {printf "%+.1f", p ? (m - p) * 100 / p : 0}')
    if (($4)); then
        if awk -v d="$diff" -v m="$margin" 'BEGIN {exit !(d <= m && d >= -m)}'; then
            verdict=ok
        else
            verdict="OFF (margin ±$margin %)"
            status=1
        fi
    else
        verdict=${5:-not checked (debug build)}
    fi
    printf '%-40s %14s %14s %8s %%  %s\n' "$1" "$2" "$3" "$diff" "$verdict"
}
echo
echo "verify: $(date -u +%F), $(nproc) CPUs, $(uname -r), fd limit $fd_limit, $(basename "$(dirname "$bin")") build; profile $profile"
printf '%-40s %14s %14s %9s  %s\n' "" predicted measured diff ""
row "server RSS per idle connection (B)" "$pred_user" "$meas_user" 1
row "kernel memory per socket (B)" "$pred_kernel" "$meas_kernel" "$kernel_checked" "not checked (other processes' sockets came and went)"
row "server RSS per history entry (B)" "$pred_entry" "$meas_entry" 1
row "  with 4 KiB data (B)" "$pred_entry4k" "$meas_entry4k" 1
row "server RSS per subscription (B)" "$(printf %.0f "$pred_sub")" "$meas_sub" 1
row "deliveries/s (from /metrics)" "$pred_deliveries" "$meas_deliveries" "$release"
# The CPU check is the long form's only: on the shared 2-core CI box the
# median window of a run came out 0.65-1.11 of the prediction over ten
# long and eleven short runs of one model on 2026-12-04 (0.54-0.81 in three
# long runs of the next), a run-to-run spread wider than the margin, so in CI it would fail on what else the box
# runs, not on the model.
if ((short)); then
    row "server CPU at that rate (cores)" "$pred_share" "$cpu_share" 0 "not checked (short form; the long form checks it)"
else
    row "server CPU at that rate (cores)" "$pred_share" "$cpu_share" "$release"
fi
row "server CPU per delivery (µs)" "$(printf %.3f "$pred_us_run")" "$meas_us" 0 info
row "fixed RSS at start (KiB)" "$((pred_fixed >> 10))" "$fixed_kib" "$release"
echo "kernel: $kernel_how; Slab in /proc/meminfo: $(( (slab1 - slab0) * 1024 / (2 * conns) )) B per socket"
echo "connections: $conns ($( ((short)) && echo "short form; the model's" || echo "the model's") bound on this box: $pred_conns, $(p .connections_bound_by)-bound)"
echo "fan-out: $subscribers subscribers × $rate publishes/s ($publishers publishers), 64-byte data, median of $windows windows of $window s"
echo "         (measured ÷ predicted cores: $(cut -d' ' -f1 "$out/windows.txt" | tr '\n' ' '));"
echo "         $frames_per_flush pushes per write (the model plans busy subscribers at $(p .load.pushes_per_write): $(printf %.3f "$pred_us") µs per delivery)"
echo "details: $out (predicted.json, connect.json, fanout.json)"
((status == 0)) || echo "verify: FAIL: a measurement differs from the model by more than $margin %" >&2
exit "$status"
