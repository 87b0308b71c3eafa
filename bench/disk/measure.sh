#!/usr/bin/env bash
# The disk engine's cost, in one run, on loopback, one worker:
#   1. publishes/s and publish → acknowledgement p50/p99 (bench's
#      `publish-ack`, closed loop) for memory, then disk with
#      store.fsync = always, batch and never;
#   2. fsyncs and group commits per publish under that load (from
#      /metrics: ringcast_store_fsyncs_total / ringcast_store_records_total);
#   3. recovery time per GB of log: fill a store with FILL_SECS of 4 KiB
#      publishes (fsync = never), stop, drop the page cache when allowed,
#      restart, and read the "disk engine recovered" log line.
#
# Usage: bash bench/disk/measure.sh
# Needs target/release/{ringcast,publish-ack}
#   (cargo build --release -p ringcast -p ringcast-bench --bin ringcast --bin publish-ack).
# CONNS, INFLIGHT, SIZE, DURATION (s), FILL_SECS override the load; STORE
# is the directory the stores go in (default target/tmp/disk-measure: put
# it on the disk you want measured). Servers are stopped by PID on exit.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$root/target/tmp/disk-measure
store=${STORE:-$work/stores}
bin=${RINGCAST_BIN:-$root/target/release/ringcast}
ack=${ACK_BIN:-$root/target/release/publish-ack}
CONNS=${CONNS:-8} INFLIGHT=${INFLIGHT:-16} SIZE=${SIZE:-64} DURATION=${DURATION:-10} FILL_SECS=${FILL_SECS:-20}
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null || true; }
trap cleanup EXIT
rm -rf "$work" && mkdir -p "$work" "$store"

# start NAME FLAGS...: one worker on a loopback port; sets $addr and $pid.
start() {
    local name=$1 line=
    shift
    "$bin" serve --listen 127.0.0.1:0 --workers 1 --no-pin --set limits.command_rate=0 \
        --set log.format=json "$@" >"$work/$name.out" 2>"$work/$name.log" &
    pid=$!
    for _ in $(seq 400); do
        line=$(head -1 "$work/$name.out" 2>/dev/null || true)
        [[ $line == "ringcast listening on "* ]] && break
        sleep 0.05
    done
    [[ $line == "ringcast listening on "* ]] || { cat "$work/$name.log"; exit 1; }
    addr=${line#ringcast listening on }
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
metric() { curl -s "http://$addr/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

printf '%-14s %12s %9s %9s %9s %16s %16s\n' run publishes/s p50_us p99_us p999_us fsyncs/publish commits/publish
for run in memory always batch never; do
    if [[ $run == memory ]]; then
        start "$run"
    else
        mkdir -p "$store/$run"
        start "$run" --set engine.kind=disk --set "store.data_path=$store/$run" --set "store.fsync=$run"
    fi
    "$ack" "$addr" --connections "$CONNS" --inflight "$INFLIGHT" --size "$SIZE" \
        --duration "$DURATION" >"$work/$run.json"
    fsyncs=$(metric ringcast_store_fsyncs_total) commits=$(metric ringcast_store_commits_total)
    records=$(metric ringcast_store_records_total)
    stop
    python3 - "$work/$run.json" "$run" "${fsyncs:-}" "${commits:-}" "${records:-}" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
run, fsyncs, commits, records = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
per = lambda n: f"{float(n) / float(records):.4f}" if records not in ("", "0") else "-"
print(f"{run:<14} {r['publishes_per_s']:>12} {r['p50_us']:>9} {r['p99_us']:>9} {r['p999_us']:>9} "
      f"{per(fsyncs) if fsyncs else '-':>16} {per(commits) if commits else '-':>16}")
if r["refused"]:
    print(f"  ({r['refused']} refused)")
PY
done

echo
echo "== recovery: fill with ${FILL_SECS}s of 4 KiB publishes (fsync = never)"
mkdir -p "$store/recovery"
flags=(--set engine.kind=disk --set "store.data_path=$store/recovery" --set store.fsync=never
       --set store.max_disk=0 --set pubsub.history_ttl=1h)
start fill "${flags[@]}"
"$ack" "$addr" --connections 4 --inflight 64 --size 4096 --channels 64 --duration "$FILL_SECS" >"$work/fill.json"
stop
du -sb "$store/recovery" | awk '{ printf "log on disk: %.2f GB\n", $1 / 1e9 }'
if sync && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then cache=cold; else cache="warm (page cache not dropped: not allowed here)"; fi
start recover "${flags[@]}"
stop
python3 - "$work/recover.log" "$cache" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("message") == "disk engine recovered":
        gb = e["bytes"] / 1e9
        print(f"recovered {e['records']} records, {gb:.2f} GB in {e['ms']} ms "
              f"({e['ms'] / 1000 / gb:.2f} s per GB, cache {sys.argv[2]})")
PY
