#!/usr/bin/env bash
# `sam build` of the four functions exactly as a user runs it (x86_64, cargo-lambda + zig from
# PyPI, settings from samconfig.toml), then checks what it produced: four x86-64 `bootstrap`
# executables that need nothing provided.al2023 lacks (glibc <= 2.34, no other shared library),
# each well under Lambda's 50 MB zipped / 250 MB unzipped limits.
#
#   infra/sam-build.sh [extra sam build arguments, e.g. --parameter-overrides Architecture=arm64]
#
# A fresh release cross-build takes ~11 minutes on 2 cores, which is why scripts/test runs the
# cheaper guard in check-template.sh instead; run this before every deploy-related change.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=infra/tools.sh
source infra/tools.sh
need_sam
need_cargo_lambda
for tool in readelf objdump zip; do
  command -v "$tool" >/dev/null || { echo "$tool is needed: apt-get install binutils zip" >&2; exit 1; }
done
export PATH="$tools/venv/bin:$PATH"   # cargo-lambda, and zig as its linker
export SAM_CLI_TELEMETRY=0
started=$(date +%s)
"$tools/sam/bin/sam" build "$@"
echo "sam build: $(($(date +%s) - started)) s" >&2

fail() { echo "sam-build: $*" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for fn in IngestFunction ResolverFunction TransformFunction ReconcileFunction; do
  bootstrap=".aws-sam/build/$fn/bootstrap"
  [[ -x "$bootstrap" ]] || fail "$bootstrap is missing"
  readelf -h "$bootstrap" | grep -q "Advanced Micro Devices X86-64" || fail "$bootstrap is not x86-64"
  for lib in $(readelf -d "$bootstrap" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
    case "$lib" in
      libc.so.6 | libm.so.6 | libpthread.so.0 | libdl.so.2 | librt.so.1 | libgcc_s.so.1 | ld-linux-x86-64.so.2) ;;
      *) fail "$fn links $lib, which provided.al2023 does not have" ;;
    esac
  done
  glibc=$(objdump -T "$bootstrap" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
  [[ "$(printf '%s\n2.34\n' "$glibc" | sort -V | tail -n 1)" == "2.34" ]] || fail "$fn needs glibc $glibc (provided.al2023 has 2.34)"
  (cd "$(dirname "$bootstrap")" && zip -q -9 "$work/$fn.zip" bootstrap)
  size=$(stat -c %s "$bootstrap"); zipped=$(stat -c %s "$work/$fn.zip")
  ((zipped < 50 * 1024 * 1024)) || fail "$fn zips to $zipped bytes, over Lambda's 50 MB"
  printf '%-17s %6.1f MB, %5.1f MB zipped, glibc >= %s\n' "$fn" "$(echo "$size / 1048576" | bc -l)" "$(echo "$zipped / 1048576" | bc -l)" "$glibc" >&2
done
echo "sam-build: four bootstraps ready in .aws-sam/build; deploy with: sam deploy --guided" >&2
