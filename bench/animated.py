#!/usr/bin/env python3
"""Animated resize against sharp's (`animated: true`, `pages: -1`), side by side, in one run.

    bench/animated.py [--photo FILE] [--frames 24] [--width 640] [--rounds 5] [--iters 3] [--json FILE]

Makes a test animation first (catg-bench make-animation: a 16:9 window panning across a photo
from ../shared/photos, --frames frames of 80 ms, written by the image crate's GIF encoder), then
runs both tools interleaved, one thread each, on two ops: every frame 240 px wide as animated
WebP q80 (anim_webp240) and as GIF (anim_gif240, each tool's defaults). Reports each tool's
median time, peak RSS (GNU time) and output bytes, and catg/sharp for each.
"""

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench import ROOT, fail, run, setup, tool_run

OPS = {"anim_webp240": "w=240&fmt=webp&q=80", "anim_gif240": "w=240&fmt=gif"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", default=str(ROOT.parent / "shared/photos"),
                        help="a photo, or a folder whose first JPEG is used")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--json", help="where to write the results")
    args = parser.parse_args()
    photo = Path(args.photo)
    if photo.is_dir():
        photos = sorted(p for p in photo.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
        if not photos:
            fail(f"no JPEG in {photo}")
        photo = photos[0]
    bench = setup()
    work = Path(tempfile.mkdtemp(prefix="catg-animated-"))
    animation = work / "animation.gif"
    run([bench, "make-animation", photo, str(args.frames), str(args.width), animation])
    env = {**os.environ, "NODE_PATH": str(ROOT / "bench/node_modules"), "RAYON_NUM_THREADS": "1",
           "VIPS_CONCURRENCY": "1", "UV_THREADPOOL_SIZE": "1"}
    sharp_js = ROOT / "bench/sharp_ops.js"
    rows = {}
    for op, query in OPS.items():
        results = {"catg": [], "sharp": []}
        for _ in range(args.rounds):
            ext = "gif" if "gif" in op else "webp"
            results["catg"].append(tool_run([bench, query, animation, str(args.iters), work / f"catg.{ext}"], env))
            results["sharp"].append(tool_run(["node", sharp_js, op, animation, str(args.iters), "1",
                                              work / f"sharp.{ext}"], env))
        row = {}
        for tool, runs in results.items():
            row[tool] = {"median_ms": round(statistics.median(r["median_ms"] for r in runs), 2),
                         "maxrss_kb": max(r["maxrss_kb"] for r in runs),
                         "out_bytes": runs[-1]["out_bytes"]}
        for key in ("median_ms", "maxrss_kb", "out_bytes"):
            row[f"{key}_ratio"] = round(row["catg"][key] / row["sharp"][key], 3)
        rows[op] = row
        print(f"{op}: catg {row['catg']['median_ms']} ms, {row['catg']['maxrss_kb'] // 1024} MB, "
              f"{row['catg']['out_bytes']} B | sharp {row['sharp']['median_ms']} ms, "
              f"{row['sharp']['maxrss_kb'] // 1024} MB, {row['sharp']['out_bytes']} B | catg/sharp time "
              f"{row['median_ms_ratio']:.2f}, RSS {row['maxrss_kb_ratio']:.2f}, bytes {row['out_bytes_ratio']:.2f}")
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "catg": run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT).strip(),
              "input": {"photo": photo.name, "frames": args.frames, "width": args.width,
                        "bytes": animation.stat().st_size},
              "rounds": args.rounds, "iters": args.iters, "ops": rows}
    out = Path(args.json) if args.json else ROOT / f"bench/results/{datetime.date.today()}-animated.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
