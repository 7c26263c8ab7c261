#!/usr/bin/env bash
# Side-by-side: catg's pipeline vs sharp (libvips), in-process, single thread, same photo, same
# output size, format and quality. Interleaved runs; prints each tool's median and the ratio.
# usage: bench/compare.sh [photo] [rounds] [iters]
# Needs node + npm (sharp is installed into bench/node_modules on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
photo="${1:-../shared/photos/Kleiber_by_Lukas_Baubkus.jpg}"
rounds="${2:-3}"
iters="${3:-5}"
[[ -f "$photo" ]] || { echo "no photo at $photo" >&2; exit 1; }
[[ -d bench/node_modules/sharp ]] || (cd bench && npm install --no-save --silent sharp >/dev/null)
cargo build --release --locked -q -p catg-bench
catg=target/release/catg-bench
sharp_js="$(realpath ../shared/peers/sharp_bench.js)"
export NODE_PATH="$PWD/bench/node_modules"
for op in webp400 jpeg1200 avif400; do
  catg_ms=(); sharp_ms=()
  for ((r = 0; r < rounds; r++)); do
    c=$("$catg" "$op" "$photo" "$iters")
    s=$(node "$sharp_js" "$op" "$photo" "$iters" 1)
    catg_ms+=("$(jq -r .median_ms <<<"$c")"); sharp_ms+=("$(jq -r .median_ms <<<"$s")")
    c_rss=$(jq -r .maxrss_kb <<<"$c"); s_rss=$(jq -r .maxrss_kb <<<"$s")
    c_bytes=$(jq -r .out_bytes <<<"$c"); s_bytes=$(jq -r .out_bytes <<<"$s")
  done
  median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
  cm=$(median "${catg_ms[@]}"); sm=$(median "${sharp_ms[@]}")
  printf '%-9s catg %8.1f ms  sharp %8.1f ms  ratio %.2f   peak RSS %5d MB vs %5d MB   bytes %7d vs %7d\n' \
    "$op" "$cm" "$sm" "$(echo "$cm / $sm" | bc -l)" $((c_rss / 1024)) $((s_rss / 1024)) "$c_bytes" "$s_bytes"
done
