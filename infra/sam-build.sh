#!/usr/bin/env bash
# `sam build` of the four functions exactly as a user runs it (cargo-lambda + zig from PyPI,
# settings from samconfig.toml), then checks what it produced: four `bootstrap` executables for
# the chosen architecture that need nothing provided.al2023 lacks (glibc <= 2.34, no other
# shared library), each well under Lambda's 50 MB zipped / 250 MB unzipped limits. Last, it pins
# the built template's Architecture parameter to that architecture, so `sam deploy` cannot put
# these binaries on functions of the other one.
#
#   infra/sam-build.sh [x86_64|arm64] [extra sam build arguments]
#
# Without an argument the architecture is samconfig.toml's (global parameter_overrides), which
# `sam deploy` reads too. arm64 needs `rustup target add aarch64-unknown-linux-gnu`.
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
arch=$(sed -n 's/^parameter_overrides.*Architecture=\([a-z0-9_]*\).*/\1/p' samconfig.toml | head -n 1)
case "${1:-}" in x86_64 | arm64) arch=$1; shift ;; esac
case "${arch:-x86_64}" in
  x86_64) arch=x86_64 machine="Advanced Micro Devices X86-64" loader=ld-linux-x86-64.so.2 ;;
  arm64) arch=arm64 machine="AArch64" loader=ld-linux-aarch64.so.1 ;;
  *) echo "sam-build: unknown architecture $arch (x86_64 or arm64)" >&2; exit 1 ;;
esac
started=$(date +%s)
"$tools/sam/bin/sam" build --parameter-overrides "Architecture=$arch" "$@"
echo "sam build: $(($(date +%s) - started)) s" >&2

fail() { echo "sam-build: $*" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for fn in IngestFunction ResolverFunction TransformFunction ReconcileFunction; do
  bootstrap=".aws-sam/build/$fn/bootstrap"
  [[ -x "$bootstrap" ]] || fail "$bootstrap is missing"
  readelf -h "$bootstrap" | grep -q "$machine" || fail "$bootstrap is not $arch"
  for lib in $(readelf -d "$bootstrap" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
    case "$lib" in
      libc.so.6 | libm.so.6 | libpthread.so.0 | libdl.so.2 | librt.so.1 | libgcc_s.so.1 | "$loader") ;;
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
# Only this architecture may be deployed from this build.
"$tools/sam/bin/python" infra/pin_architecture.py .aws-sam/build/template.yaml "$arch"
echo "sam-build: four $arch bootstraps ready in .aws-sam/build (Architecture pinned to $arch); deploy with: sam deploy --guided" >&2
