#!/usr/bin/env bash
# Fuzzing: every cargo-fuzz target under tests/fuzz for a bounded time
# (FUZZ_SECONDS each, default 60; FUZZ_TARGETS to pick some), on stable
# rustc without a sanitizer, with overflow checks and debug assertions on.
# Fails on any finding (panic, abort, timeout, out-of-memory); the input is
# left under tests/fuzz/artifacts/<target>/ and printed in hex.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
TARGETS="${FUZZ_TARGETS:-query record mixture stream_state segment sidecar}"
FD=tests/fuzz
# The fuzz build (instrumented, its own flags) never shares the crate's target dir.
FTD="${FUZZ_TARGET_DIR:-$FD/target}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== cargo install cargo-fuzz --locked"
  cargo install cargo-fuzz --locked
fi
echo "== fuzz seeds (tests/fuzz/make_seeds.sh; CORPUSQL_BIN names a built binary)"
"$FD/make_seeds.sh" ${CORPUSQL_BIN:+"$CORPUSQL_BIN"}
echo "== cargo fuzz build (-s none: stable rustc; -a: overflow checks)"
cargo fuzz build --fuzz-dir "$FD" --target-dir "$FTD" -s none -a
failed=""
for t in $TARGETS; do
  mkdir -p "$FD/corpus/$t" "$FD/artifacts/$t" "$FD/logs"
  log="$FD/logs/$t.log"
  echo "== fuzz $t for ${FUZZ_SECONDS}s"
  # -timeout: one input taking over 10 s is a hang; -rss_limit_mb bounds the
  # process, and the harness aborts on any single allocation over 256 MiB
  # (-malloc_limit_mb needs a sanitizer's allocator hooks to take effect).
  if cargo fuzz run --fuzz-dir "$FD" --target-dir "$FTD" -s none -a "$t" "$FD/corpus/$t" "$FD/seeds/$t" -- \
      -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
      -artifact_prefix="$FD/artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" | tr '\n' ' '
    echo "corpus: $(ls "$FD/corpus/$t" | wc -l) inputs"
  else
    echo "FINDING in $t:"; tail -n 60 "$log"
    for a in "$FD/artifacts/$t"/*; do [ -f "$a" ] && { echo "-- $a"; od -An -tx1 -v "$a" | head -n 40; }; done
    failed="$failed $t"
  fi
done
if [ -n "$failed" ]; then
  echo "fuzzing found problems in:$failed"
  exit 1
fi
echo "fuzzing: no findings in $TARGETS (${FUZZ_SECONDS}s each)"
