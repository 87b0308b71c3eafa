#!/usr/bin/env bash
# The disk engine's crash test in full: 20 trials (TRIALS overrides) of
# publishers at full speed with store.fsync = always, `kill -9` at a random
# moment, restart, and every acknowledged offset of every channel read back
# by a resume with no gap (core/tests/disk.rs, which CI runs with 3 trials).
#
# Usage: bash bench/disk/crash.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
RINGCAST_DISK_CRASH_TRIALS=${TRIALS:-20} cargo test -p ringcast --test disk \
    kill_9_under_full_speed_publishing_loses_no_acknowledged_offset -- --nocapture
