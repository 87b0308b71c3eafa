#!/usr/bin/env bash
# Installs the SDK's pinned dev dependencies (typescript, ws), builds it and
# runs its unit and integration tests against the ringcast binary
# (RINGCAST_BIN, else target/debug/ringcast, built here if missing), and
# checks the demo page's embedded copy of the SDK matches the build.
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd ../.. && pwd)"
if [ -z "${RINGCAST_BIN:-}" ]; then
  export RINGCAST_BIN="$root/target/debug/ringcast"
  [ -x "$RINGCAST_BIN" ] || (cd "$root" && cargo build -q -p ringcast)
fi
npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
# The demo page embeds a one-file copy of the build: it must be current.
fresh="$(mktemp)"
trap 'rm -f "$fresh"' EXIT
node scripts/bundle.mjs "$fresh"
if ! cmp -s "$fresh" "$root/core/src/server/demo/ringcast-client.js"; then
  echo "core/src/server/demo/ringcast-client.js is stale: run node scripts/bundle.mjs in clients/js" >&2
  exit 1
fi
npm test
