#!/usr/bin/env bash
# Builds ringcast (release), runs Autobahn cases against /echo under the
# io_uring and the epoll driver (readiness sockets) and io_uring with
# completion sockets (io_uring.socket_io=completion), and exits non-zero on
# any failed case. DRIVERS picks some of "io_uring epoll completion".
# permessage-deflate is on (deflate.enabled=true) for every run: cases 1-10
# offer no extension, so they run uncompressed; 12.* and 13.* negotiate it.
#   CASES (default: cases 1-10 and a representative part of 12/13, see
#   DEFAULT_CASES; all of 12/13 is CASES="12.*,13.*", about 7 min per driver
#   on a release build), AUTOBAHN_VENV,
#   RINGCAST_BIN (use this binary instead of building a release one),
#   RINGCAST_FLAGS (more `serve` flags, e.g. "--set deflate.client_no_context_takeover=false").
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# 12.1: every message size with the default offer; 13.1/13.2: 1000
# messages with and without context takeover asked; 13.3/13.5: an 8-bit
# server window (messages over 256 bytes go out uncompressed); 13.7: several
# offers in one header. The rest of 12/13 varies sizes and fragmentation.
DEFLATE_CASES="12.1.*,13.1.*,13.2.*,13.3.*,13.5.*,13.7.*"
DEFAULT_CASES="1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*,$DEFLATE_CASES"
CASES="${CASES:-$DEFAULT_CASES}"
export AUTOBAHN_VENV="${AUTOBAHN_VENV:-/tmp/autobahn-py3}"
export AUTOBAHN_PATH=/echo AUTOBAHN_AGENT=ringcast AUTOBAHN_TIMEOUT=600

bash "$HERE/setup.sh" "$AUTOBAHN_VENV" >/dev/null
# RINGCAST_BIN: a binary already built (CI passes the debug build of its
# test step, which saves a release build); otherwise build a release one.
if [ -n "${RINGCAST_BIN:-}" ]; then
  BIN="$RINGCAST_BIN"
else
  cargo build --release -q -p ringcast --manifest-path "$ROOT/Cargo.toml"
  BIN="$ROOT/target/release/ringcast"
fi

status=0
for driver in ${DRIVERS:-io_uring epoll completion}; do
  out="$ROOT/target/autobahn/$driver"
  mkdir -p "$out"
  flags=(--listen 127.0.0.1:0 --workers 2 --max-message-size 16MiB --set deflate.enabled=true)
  # shellcheck disable=SC2206 # word splitting of extra flags is the point
  [ -n "${RINGCAST_FLAGS:-}" ] && flags+=(${RINGCAST_FLAGS})
  [ "$driver" = epoll ] && flags+=(--force-epoll)
  [ "$driver" = completion ] && flags+=(--set io_uring.socket_io=completion)
  "$BIN" serve "${flags[@]}" >"$out/server.stdout" 2>"$out/server.log" &
  pid=$!
  port=""
  for _ in $(seq 1 100); do
    port=$(sed -n 's/^ringcast listening on .*:\([0-9]*\)$/\1/p' "$out/server.stdout")
    [ -n "$port" ] && break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "conformance: ringcast did not start ($driver)"; cat "$out/server.log"; kill "$pid" 2>/dev/null || true
    exit 1
  fi
  grep -m1 "driver" "$out/server.log" || true
  echo "conformance: $driver driver, port $port, cases $CASES"
  if ! bash "$HERE/run.sh" 127.0.0.1 "$port" "$out" "$CASES"; then status=1; fi
  kill -TERM "$pid"
  wait "$pid" || { echo "conformance: server exited with $? after SIGTERM ($driver)"; status=1; }
done
exit $status
