#!/usr/bin/env bash
# Fuzz every target (or the ones named) for a bounded time each, with libFuzzer via cargo-fuzz:
#
#     fuzz/run.sh [--seconds N] [recipe|probe|render|jpeg_refine ...]   (default: 60 s each, all four)
#
# Needs a nightly toolchain (`rustup toolchain install nightly`); installs cargo-fuzz from
# crates.io into target/tools on first use. Seeds: fuzz/seeds/<target>, fuzz/regressions/<target>
# and, for the image targets, ../shared/corpus and tests/fixtures (the iPhone-style HEIC). A crash
# is copied into fuzz/regressions/<target>/ (commit it: tests/fuzz_regressions.rs replays it in
# every test run) and the script fails.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_EACH=60
TARGETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_EACH="$2"; shift 2 ;;
    recipe|probe|render|jpeg_refine) TARGETS+=("$1"); shift ;;
    *) echo "fuzz/run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(recipe probe render jpeg_refine)

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: cargo-fuzz needs a nightly toolchain: rustup toolchain install nightly" >&2
  exit 1
fi
FUZZ_BIN="$ROOT/target/tools/cargo-fuzz/bin"
if [ ! -x "$FUZZ_BIN/cargo-fuzz" ]; then
  echo "== installing cargo-fuzz into target/tools" >&2
  CARGO_TARGET_DIR="$ROOT/target/tools-build" cargo install --locked --root "$ROOT/target/tools/cargo-fuzz" cargo-fuzz
fi
export PATH="$FUZZ_BIN:$PATH"
export CARGO_TARGET_DIR="$ROOT/target/fuzz"

cd "$ROOT"
status=0
for target in "${TARGETS[@]}"; do
  work="$ROOT/target/fuzz-corpus/$target"
  mkdir -p "$work" "fuzz/regressions/$target"
  seeds=("fuzz/regressions/$target")
  [ -d "fuzz/seeds/$target" ] && seeds+=("fuzz/seeds/$target")
  if [ "$target" != recipe ] && [ -d "$ROOT/../shared/corpus" ]; then
    seeds+=("$ROOT/../shared/corpus")
  fi
  [ "$target" != recipe ] && [ "$target" != jpeg_refine ] && seeds+=("tests/fixtures")
  artifacts="$ROOT/target/fuzz-artifacts/$target"
  rm -rf "$artifacts" && mkdir -p "$artifacts"
  echo "== fuzzing $target for ${SECONDS_EACH}s (seeds: ${seeds[*]})" >&2
  log="$ROOT/target/fuzz-$target.log"
  if cargo +nightly fuzz run --fuzz-dir fuzz "$target" "$work" "${seeds[@]}" -- \
      -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 -max_len=1048576 \
      -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
    echo "   $target: $runs runs, coverage $cov edges, no crash" >&2
  else
    status=1
    echo "   $target: FAILED; see $log" >&2
    for found in "$artifacts"/*; do
      [ -f "$found" ] || continue
      cp "$found" "fuzz/regressions/$target/"
      echo "   saved fuzz/regressions/$target/$(basename "$found"): fix it, then commit it" >&2
    done
    tail -30 "$log" >&2
  fi
done
exit $status
