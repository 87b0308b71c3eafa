#!/usr/bin/env bash
# The demo page in a real browser: installs Debian's chromium if missing,
# then runs test/browser.e2e.mjs (playwright-core drives it; no browser
# download). Run after test.sh (it reuses node_modules and dist/). The
# screenshot lands in target/browser-demo.png.
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd ../.. && pwd)"
export RINGCAST_BIN="${RINGCAST_BIN:-$root/target/debug/ringcast}"
if [ -z "${CHROMIUM:-}" ] && ! [ -x /usr/bin/chromium ]; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium
fi
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --loglevel=error
[ -f dist/index.js ] || npm run --silent build
npm run --silent test:browser
