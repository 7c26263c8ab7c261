#!/usr/bin/env bash
# Whether a change moved catg's render times: catg-bench built at BASE and at the working tree,
# run interleaved (base, head, base, …) on the same photos, ops and settings; prints each op's
# median time at both and the ratio head / base (the median of the per-photo ratios).
# usage: bench/compare-commits.sh BASE [rounds] [iters] [photos…]
# OPS="ingest" picks other ops (default: webp400 jpeg1200 avif400). An op BASE's catg-bench does
# not have (ingest) is run by building BASE with the working tree's catg-bench source, which
# only calls the library APIs both sides share. BENCH_PROFILE=dev builds with the dev profile
# (dependencies optimised already; set CARGO_PROFILE_DEV_OPT_LEVEL=3 for our crates) instead of
# a release build of everything: a quicker like-for-like comparison, not a headline figure.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: bench/compare-commits.sh BASE [rounds] [iters] [photos…]}
rounds=${2:-5}; iters=${3:-5}; shift $(( $# < 3 ? $# : 3 ))
photos=("$@")
((${#photos[@]})) || photos=(../shared/photos/*.jpg)
work=$(mktemp -d)
trap 'git worktree remove --force "$work/base" 2>/dev/null || true; rm -rf "$work"' EXIT
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
git worktree add -q --detach "$work/base" "$base"
cp crates/catg-bench/src/main.rs "$work/base/crates/catg-bench/src/main.rs"
profile=${BENCH_PROFILE:-release}
out_dir=$([[ $profile == dev ]] && echo debug || echo "$profile")
(cd "$work/base" && cargo build --profile "$profile" -q -p catg-bench)
cp "$CARGO_TARGET_DIR/$out_dir/catg-bench" "$work/catg-bench-base"
cargo build --profile "$profile" -q -p catg-bench
cp "$CARGO_TARGET_DIR/$out_dir/catg-bench" "$work/catg-bench-head"
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
read -ra ops <<<"${OPS:-webp400 jpeg1200 avif400}"
for op in "${ops[@]}"; do
  ratios=(); all_base=(); all_head=()
  for photo in "${photos[@]}"; do
    b=(); h=()
    for ((r = 0; r < rounds; r++)); do
      b+=("$("$work/catg-bench-base" "$op" "$photo" "$iters" | jq -r .median_ms)")
      h+=("$("$work/catg-bench-head" "$op" "$photo" "$iters" | jq -r .median_ms)")
      [[ -n "${VERBOSE:-}" ]] && echo "  $op ${photo##*/} round $r: base ${b[-1]} ms, head ${h[-1]} ms" >&2
    done
    mb=$(median "${b[@]}"); mh=$(median "${h[@]}")
    all_base+=("$mb"); all_head+=("$mh"); ratios+=("$(echo "$mh / $mb" | bc -l)")
  done
  printf '%-9s base %7.1f ms  head %7.1f ms  (medians over %d photos)  head/base %.3f\n' \
    "$op" "$(median "${all_base[@]}")" "$(median "${all_head[@]}")" "${#photos[@]}" "$(median "${ratios[@]}")"
done
