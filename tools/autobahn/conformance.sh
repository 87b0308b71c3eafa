#!/usr/bin/env bash
# Builds ringcast (release), runs Autobahn cases against /echo under the
# io_uring and the epoll driver (readiness sockets) and io_uring with
# completion sockets (io_uring.socket_io=completion), and exits non-zero on
# any failed case. DRIVERS picks some of "io_uring epoll completion".
# permessage-deflate is on (deflate.enabled=true) for every run: cases 1-10
# offer no extension, so they run uncompressed; 12.* and 13.* negotiate it.
#   CASES (default: cases 1-10 and all of 12/13 (216 compression cases,
#   about 5 min per driver on the debug binary CI uses); CASES=quick runs
#   1-10 and a representative part of 12/13), AUTOBAHN_VENV,
#   RINGCAST_BIN (use this binary instead of building a release one),
#   RINGCAST_FLAGS (more `serve` flags, e.g. "--set deflate.client_no_context_takeover=false").
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# 12.*: messages of every size (64 B to 128 KiB) and fragmentation with the
# default offer; 13.*: the same under every offer (context takeover asked or
# not, window bits 8-15 either way, several offers in one header).
# The quick part: 12.1 (every size, default offer), 13.1/13.2 (context
# takeover asked or not), 13.3/13.5 (an 8-bit server window), 13.7 (several
# offers in one header).
BASE_CASES="1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*"
case "${CASES:-}" in
  "") CASES="$BASE_CASES,12.*,13.*" ;;
  quick) CASES="$BASE_CASES,12.1.*,13.1.*,13.2.*,13.3.*,13.5.*,13.7.*" ;;
esac
export AUTOBAHN_VENV="${AUTOBAHN_VENV:-/tmp/autobahn-py3}"
export AUTOBAHN_PATH=/echo AUTOBAHN_AGENT=ringcast AUTOBAHN_TIMEOUT=900

bash "$HERE/setup.sh" "$AUTOBAHN_VENV" >/dev/null
# RINGCAST_BIN: a binary already built (CI passes the debug build of its
# test step, which saves a release build); otherwise build a release one.
if [ -n "${RINGCAST_BIN:-}" ]; then
  BIN="$RINGCAST_BIN"
else
  cargo build --release -q -p ringcast --manifest-path "$ROOT/Cargo.toml"
  BIN="$ROOT/target/release/ringcast"
fi

# One driver's run: a server, the suite against it, the server's clean exit.
conform() {
  local driver="$1" out="$ROOT/target/autobahn/$1" pid port="" status=0
  mkdir -p "$out"
  local flags=(--listen 127.0.0.1:0 --workers 2 --max-message-size 16MiB --set deflate.enabled=true)
  # shellcheck disable=SC2206 # word splitting of extra flags is the point
  [ -n "${RINGCAST_FLAGS:-}" ] && flags+=(${RINGCAST_FLAGS})
  [ "$driver" = epoll ] && flags+=(--force-epoll)
  [ "$driver" = completion ] && flags+=(--set io_uring.socket_io=completion)
  "$BIN" serve "${flags[@]}" >"$out/server.stdout" 2>"$out/server.log" &
  pid=$!
  for _ in $(seq 1 100); do
    port=$(sed -n 's/^ringcast listening on .*:\([0-9]*\)$/\1/p' "$out/server.stdout")
    [ -n "$port" ] && break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "conformance: ringcast did not start ($driver)"; cat "$out/server.log"; kill "$pid" 2>/dev/null || true
    return 1
  fi
  grep -m1 "driver" "$out/server.log" || true
  echo "conformance: $driver driver, port $port, cases $CASES"
  bash "$HERE/run.sh" 127.0.0.1 "$port" "$out" "$CASES" || status=1
  kill -TERM "$pid"
  wait "$pid" || { echo "conformance: server exited with $? after SIGTERM ($driver)"; status=1; }
  return $status
}

status=0
for driver in ${DRIVERS:-io_uring epoll completion}; do
  conform "$driver" || status=1
done
exit $status
