#!/usr/bin/env python3
"""Bytes at matched quality: how large catg's variant must be to look as good as sharp's.

    bench/bytes.py [--photos DIR] [--only PHOTO...] [--ops webp400 jpeg1200 avif400] [--json FILE]

For every photo and op, sharp renders once at its defaults as bench.py runs it (WebP q80, JPEG
q80, AVIF q50), and catg renders the same size at a sweep of its own qualities. Each output's
DSSIM is measured against bench.py's ideal reference (full decode, sRGB, float Lanczos3). catg's
bytes at sharp's DSSIM come from its sweep, log(bytes) interpolated linearly in log(DSSIM)
between the two sweep points around it; the ratio to sharp's bytes is the row's figure (< 1:
catg needs fewer bytes for the same quality). The table also gives catg's own default: its bytes
and DSSIM beside sharp's. Time is bench.py's job; this script only renders once per point.

Needs what bench.py needs (node + sharp, vips for decoding AVIF outputs); builds catg-bench in
the dev profile (bytes do not depend on the optimisation level).
"""

import argparse
import datetime
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from bench import as_png, fail, run, select_photos  # noqa: E402

OPS = {
    "webp400": {"query": "w=400&fmt=webp", "default": 80, "sweep": [40, 50, 60, 65, 70, 75, 80, 85, 90], "width": 400},
    "jpeg1200": {"query": "w=1200&fmt=jpeg", "default": 80, "sweep": [60, 65, 70, 75, 80, 85, 90], "width": 1200},
    "avif400": {"query": "w=400&fmt=avif", "default": 51, "sweep": [40, 45, 50, 51, 52, 55, 60, 70], "width": 400},
}


def bytes_at(points, target):
    """log-bytes at DSSIM `target` on the sweep's curve, or None outside the swept range."""
    points = sorted(points)  # by bytes: DSSIM falls as bytes rise (almost always)
    for (b0, d0), (b1, d1) in zip(points, points[1:]):
        if min(d0, d1) <= target <= max(d0, d1) and d0 != d1:
            t = (math.log(target) - math.log(d0)) / (math.log(d1) - math.log(d0))
            return math.exp(math.log(b0) + t * (math.log(b1) - math.log(b0)))
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", default=str(ROOT.parent / "shared/photos"))
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--ops", nargs="*", default=list(OPS))
    parser.add_argument("--json")
    args = parser.parse_args()
    photos = select_photos(args.photos, args.only)
    if not (ROOT / "bench/node_modules/sharp").is_dir():
        print("== installing sharp (npm)", file=sys.stderr)
        run(["npm", "install", "--no-save", "--silent", "sharp"], cwd=ROOT / "bench")
    if not shutil.which("vips"):
        fail("vips decodes the AVIF outputs (apt-get install libvips-tools)")
    run(["cargo", "build", "--locked", "-q", "-p", "catg-bench"], cwd=ROOT)
    bench = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug/catg-bench"
    sharp_js = ROOT.parent / "shared/peers/sharp_bench.js"
    env = {**os.environ, "NODE_PATH": str(ROOT / "bench/node_modules"), "RAYON_NUM_THREADS": "1"}
    versions = {
        "sharp": json.loads(run(["node", "-e", "console.log(JSON.stringify(require('sharp').versions))"], env=env)),
        "catg": run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT).strip(),
    }
    work = Path(tempfile.mkdtemp(prefix="catg-bytes-"))
    dssim = lambda ref, out: json.loads(run([bench, "dssim", ref, as_png(out)]))["dssim"]  # noqa: E731
    rows = []
    try:
        for photo in photos:
            for op in args.ops:
                spec = OPS[op]
                ext = op[:4].replace("jpeg", "jpg")
                reference = work / f"{photo.stem}-{op}-ref.png"
                sharp_out = work / f"{photo.stem}-{op}-sharp.{ext}"
                sharp = json.loads(run(["node", sharp_js, op, photo, "0", "1", sharp_out], env=env))
                if sharp["out_w"] != spec["width"]:
                    continue
                run([bench, "reference", photo, str(spec["width"]), reference])
                sweep = []
                for q in spec["sweep"]:
                    out = work / f"{photo.stem}-{op}-catg-q{q}.{ext}"
                    result = json.loads(run([bench, f"{spec['query']}&q={q}", photo, "0", out], env=env))
                    if result["out_w"] != spec["width"]:
                        break
                    sweep.append({"q": q, "bytes": result["out_bytes"], "dssim": dssim(reference, out)})
                if len(sweep) != len(spec["sweep"]):
                    print(f"{photo.name[:34]:34} {op:8}  skipped: narrower than {spec['width']} px", file=sys.stderr)
                    continue
                target = dssim(reference, sharp_out)
                matched = bytes_at([(p["bytes"], p["dssim"]) for p in sweep], target)
                default = next(p for p in sweep if p["q"] == spec["default"])
                row = {"photo": photo.name, "op": op, "sharp": {"bytes": sharp["out_bytes"], "dssim": target},
                       "catg_sweep": sweep, "catg_bytes_at_sharp_dssim": matched and round(matched),
                       "matched_bytes_ratio": matched and round(matched / sharp["out_bytes"], 4),
                       "default_bytes_ratio": round(default["bytes"] / sharp["out_bytes"], 4),
                       "default_dssim_catg": default["dssim"]}
                rows.append(row)
                shown = f"{row['matched_bytes_ratio']:.3f}" if matched else "out of range"
                print(f"{photo.name[:34]:34} {op:8}  sharp {sharp['out_bytes']:7d} B dssim {target:.5f} | catg default "
                      f"{default['bytes']:7d} B dssim {default['dssim']:.5f} | bytes at sharp's DSSIM: {shown}",
                      file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    summary = {}
    for op in args.ops:
        r = [x for x in rows if x["op"] == op]
        matched = [x["matched_bytes_ratio"] for x in r if x["matched_bytes_ratio"]]
        if not r:
            continue
        summary[op] = {
            "photos": len(r), "matched_in_range": len(matched),
            "median_matched_bytes_ratio": matched and round(statistics.median(matched), 3),
            "geomean_matched_bytes_ratio": matched and round(math.exp(statistics.mean(map(math.log, matched))), 3),
            "median_default_bytes_ratio": round(statistics.median(x["default_bytes_ratio"] for x in r), 3),
            "median_default_dssim_catg": statistics.median(x["default_dssim_catg"] for x in r),
            "median_dssim_sharp": statistics.median(x["sharp"]["dssim"] for x in r),
        }
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "versions": versions, "summary": summary, "rows": rows}
    out = Path(args.json) if args.json else ROOT / f"bench/results/{datetime.date.today()}-bytes.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"\ncatg {versions['catg']} vs sharp {versions['sharp'].get('sharp')}: bytes at sharp's DSSIM, over {len(photos)} photos")
    print(f"{'op':9} {'median':>7} {'geomean':>8} {'in range':>9} | {'default bytes':>13} {'DSSIM catg':>11} {'sharp':>9}")
    for op, s in summary.items():
        print(f"{op:9} {s['median_matched_bytes_ratio'] or 0:7.3f} {s['geomean_matched_bytes_ratio'] or 0:8.3f} "
              f"{s['matched_in_range']:>5}/{s['photos']:<3} | {s['median_default_bytes_ratio']:13.3f} "
              f"{s['median_default_dssim_catg']:11.5f} {s['median_dssim_sharp']:9.5f}")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
