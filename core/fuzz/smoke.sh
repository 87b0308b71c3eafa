#!/usr/bin/env bash
# Smoke run of every fuzz target: the committed seeds and regression inputs,
# then a short, seeded (so repeatable) libFuzzer run per target. Exits non-zero
# on the first crash, hang or failed build; the input that crashed is kept
# under core/fuzz/artifacts/<target>/ and its path printed.
#
# Self-installing: cargo-fuzz comes from crates.io (pinned, bounded by a
# timeout). libFuzzer needs nightly features, and this machine has only the
# stable toolchain, so RUSTC_BOOTSTRAP=1 lets stable accept them.
#
# Knobs (environment): SMOKE_RUNS (executions per target, default 250000),
# SMOKE_SECS (time cap per target, default 20), SMOKE_TARGETS (space-separated
# subset). Budget with the defaults: about 1.5 min of fuzzing, plus the first
# build of ringcast with coverage instrumentation (a few minutes from clean).
set -euo pipefail
cd "$(dirname "$0")"

CARGO_FUZZ_VERSION=0.13.2
RUNS=${SMOKE_RUNS:-250000}
SECS=${SMOKE_SECS:-20}
TARGETS=${SMOKE_TARGETS:-handshake decoder decoder_frames command session}
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz smoke: installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io"
    timeout 900 cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet
fi

# No sanitizer: the code under test is safe Rust, and this keeps the smoke
# fast (the long runs in README.md use AddressSanitizer, for the unsafe code in
# dependencies). Debug assertions are on (cargo-fuzz's default), so the
# `debug_assert!`s in core/src are checked too.
FLAGS=(--sanitizer none)
echo "fuzz smoke: building targets ($(cargo fuzz --version))"
cargo fuzz build "${FLAGS[@]}"

start=$(date +%s)
for target in $TARGETS; do
    # A fresh scratch corpus first (libFuzzer writes new inputs into the
    # first directory), then the committed inputs, which stay untouched.
    scratch=target/smoke-corpus/$target
    rm -rf "$scratch"
    mkdir -p "$scratch"
    dirs=("$scratch" "seeds/$target")
    [ -d "regressions/$target" ] && dirs+=("regressions/$target")
    t0=$(date +%s)
    log=target/smoke-$target.log
    if ! cargo fuzz run "${FLAGS[@]}" "$target" "${dirs[@]}" -- \
        -seed=1 -runs="$RUNS" -max_total_time="$SECS" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz smoke: $target FAILED (log: core/fuzz/$log)"
        echo "minimize with: RUSTC_BOOTSTRAP=1 cargo fuzz tmin ${FLAGS[*]} $target <artifact>"
        exit 1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1 || true)
    echo "fuzz smoke: $target ok: ${execs:-?} runs, $cov, $(( $(date +%s) - t0 ))s"
done
echo "fuzz smoke: all targets ok in $(( $(date +%s) - start ))s of fuzzing"
