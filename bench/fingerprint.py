#!/usr/bin/env python3
"""Fingerprinting throughput: catg's streaming SHA-256 vs `openssl dgst -sha256`, same file,
interleaved runs, medians, each process's peak RSS (wait4).

    bench/fingerprint.py [--size-mib 1024] [--rounds 5]

The file is random bytes (kept in target/bench/ between runs; the page cache holds it, so
both tools read from memory and the hash is what is measured). catg runs `catg inspect`, which
streams the whole file through SHA-256 while sniffing the first bytes: random bytes are
`not_an_image`, so the run is exactly ingest's work on a rejected upload.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from measure import measured, require_gnu_time

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd):
    """Wall seconds, peak RSS in MB, exit code."""
    result, elapsed, rss = measured(cmd)
    return elapsed, rss / 1024, result.returncode


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    require_gnu_time()
    if not shutil.which("openssl"):
        sys.exit("openssl is needed (apt-get install openssl)")
    subprocess.run(["cargo", "build", "--release", "--locked", "-q", "-p", "catg-cli"], cwd=ROOT, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    catg = target / "release/catg"
    data = target / f"bench/random-{args.size_mib}m.bin"
    if not data.exists() or data.stat().st_size != args.size_mib << 20:
        data.parent.mkdir(parents=True, exist_ok=True)
        with open("/dev/urandom", "rb") as src, open(data, "wb") as out:
            for _ in range(args.size_mib):
                out.write(src.read(1 << 20))
    subprocess.run(["cat", str(data)], stdout=subprocess.DEVNULL, check=True)  # into the page cache
    results = {"catg": [], "openssl": []}
    for _ in range(args.rounds):
        for tool, cmd in (("catg", [catg, "inspect", data]), ("openssl", ["openssl", "dgst", "-sha256", data])):
            seconds, rss, code = timed(cmd)
            if tool == "openssl" and code != 0:
                sys.exit(f"openssl failed ({code})")
            if tool == "catg" and code != 2:  # 2: rejected (not_an_image), after hashing it all
                sys.exit(f"catg inspect exited {code}, expected 2 (not_an_image)")
            results[tool].append((seconds, rss))
    small = data.with_name("random-1m.bin")
    small.write_bytes(data.read_bytes()[: 1 << 20]) if not small.exists() else None
    _, rss_small, _ = timed([catg, "inspect", small])
    gib = args.size_mib / 1024
    summary = {}
    for tool, runs in results.items():
        seconds = statistics.median(s for s, _ in runs)
        summary[tool] = (gib / seconds, max(r for _, r in runs))
    version = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    print(f"{args.size_mib} MiB, {args.rounds} interleaved rounds, medians ({version})")
    for tool, (rate, rss) in summary.items():
        print(f"  {tool:8} {rate:5.2f} GiB/s  peak RSS {rss:5.1f} MB")
    print(f"  ratio catg/openssl throughput: {summary['catg'][0] / summary['openssl'][0]:.2f}")
    print(f"  catg peak RSS growth from 1 MiB to {args.size_mib} MiB: {summary['catg'][1] - rss_small:+.1f} MB")


if __name__ == "__main__":
    main()
