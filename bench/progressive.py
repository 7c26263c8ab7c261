#!/usr/bin/env python3
"""Progressive against baseline JPEG, catg only: bytes and render time of every photo in
../shared/photos at 400 and 1200 px wide, q80, 2 rounds of 3.

    bench/progressive.py [catg-bench]

The default catg-bench is target/release/catg-bench (build it with
`cargo build --release -p catg-bench`). Prints, per width, progressive/baseline for bytes and time.
"""

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    bench = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target/release/catg-bench")
    photos = sorted(p for p in (ROOT.parent / "shared/photos").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    for width in (400, 1200):
        bytes_ratio, time_ratio = [], []
        for photo in photos:
            result = {}
            for progressive in (False, True):
                query = f"w={width}&fmt=jpeg&q=80" + ("&progressive=1" if progressive else "")
                runs = [json.loads(subprocess.run([bench, query, str(photo), "3"], capture_output=True, text=True,
                                                  check=True).stdout) for _ in range(2)]
                result[progressive] = (statistics.median(r["median_ms"] for r in runs), runs[0]["out_bytes"])
            bytes_ratio.append(result[True][1] / result[False][1])
            time_ratio.append(result[True][0] / result[False][0])
        print(f"{width} px: bytes progressive/baseline median {statistics.median(bytes_ratio):.3f} "
              f"(min {min(bytes_ratio):.3f}, max {max(bytes_ratio):.3f}); time median "
              f"{statistics.median(time_ratio):.3f} (max {max(time_ratio):.3f})")


if __name__ == "__main__":
    main()
