#!/usr/bin/env python3
"""The recipe operations against sharp's, side by side, in one run on this machine.

    bench/ops.py [--photos DIR] [--rounds 3] [--iters 3] [--only PHOTO...] [--json FILE] [--gallery DIR]

For every photo (JPEG and PNG) in ../shared/photos, catg (catg-bench) and sharp (sharp_ops.js)
run each op interleaved, one thread each, every output JPEG q80:

  cover400  400x400 cover, centred          (catg w=400&h=400)
  smart400  400x400 cover, smart crop       (catg g=smart; sharp position 'attention')
  blur5     1200 px wide, Gaussian sigma 5  (catg blur=5)
  sharpen1  1200 px wide, sharpen sigma 1   (catg sharpen=1)

It reports each tool's median time, catg/sharp per op, and what the smart crop costs over the
centred one (smart400/cover400) for each tool. --gallery DIR also writes each photo's smart
crop by both tools (240x240) and a Markdown table of them, for docs/smart-crop.md.
"""

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench import ROOT, run, select_photos, setup, tool_run

OPS = {
    "cover400": "w=400&h=400&fmt=jpeg&q=80",
    "smart400": "w=400&h=400&g=smart&fmt=jpeg&q=80",
    "blur5": "w=1200&blur=5&fmt=jpeg&q=80",
    "sharpen1": "w=1200&sharpen=1&fmt=jpeg&q=80",
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", default=str(ROOT.parent / "shared/photos"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="photo file names to run (default: all)")
    parser.add_argument("--json", help="where to write the results")
    parser.add_argument("--gallery", help="write both tools' smart crops of every photo here")
    parser.add_argument("--ops", nargs="*", default=list(OPS), help="ops to run (default: all)")
    args = parser.parse_args()
    photos = select_photos(args.photos, args.only)
    bench = setup()
    env = {**os.environ, "NODE_PATH": str(ROOT / "bench/node_modules"), "RAYON_NUM_THREADS": "1",
           "VIPS_CONCURRENCY": "1", "UV_THREADPOOL_SIZE": "1"}
    sharp_js = ROOT / "bench/sharp_ops.js"
    work = Path(tempfile.mkdtemp(prefix="catg-ops-"))
    rows = []
    for photo in photos:
        row = {"photo": photo.name}
        for op in args.ops:
            query = OPS[op]
            times = {"catg": [], "sharp": []}
            for _ in range(args.rounds):
                c = tool_run([bench, query, photo, str(args.iters), work / f"{photo.stem}-{op}-catg.jpg"], env)
                s = tool_run(["node", sharp_js, op, photo, str(args.iters), "1", work / f"{photo.stem}-{op}-sharp.jpg"], env)
                times["catg"].append(c["median_ms"])
                times["sharp"].append(s["median_ms"])
            row[op] = {tool: round(statistics.median(t), 2) for tool, t in times.items()}
            row[op]["ratio"] = round(row[op]["catg"] / row[op]["sharp"], 3)
        smart = "smart400" in args.ops and "cover400" in args.ops
        for tool in ("catg", "sharp") if smart else ():
            row[f"smart_over_centre_{tool}"] = round(row["smart400"][tool] / row["cover400"][tool], 3)
        rows.append(row)
        print(f"{photo.name[:34]:34} " + " ".join(f"{op} {row[op]['catg']:6.1f}/{row[op]['sharp']:6.1f}" for op in args.ops)
              + (f"  smart/centre catg {row['smart_over_centre_catg']:.2f} sharp {row['smart_over_centre_sharp']:.2f}"
                 if smart else ""), file=sys.stderr, flush=True)
    summary = {op: round(statistics.median(r[op]["ratio"] for r in rows), 3) for op in args.ops}
    for op in args.ops:
        summary[f"{op}_max"] = max(r[op]["ratio"] for r in rows)
    for tool in ("catg", "sharp") if smart else ():
        summary[f"smart_over_centre_{tool}"] = round(statistics.median(r[f"smart_over_centre_{tool}"] for r in rows), 3)
        summary[f"smart_over_centre_{tool}_max"] = max(r[f"smart_over_centre_{tool}"] for r in rows)
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "catg": run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT).strip(),
              "summary": summary, "rows": rows}
    out = Path(args.json) if args.json else ROOT / f"bench/results/{datetime.date.today()}-ops.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print("\nmedian (max) over", len(rows), "photos, catg/sharp time:",
          ", ".join(f"{op} {summary[op]:.2f} ({summary[op + '_max']:.2f})" for op in args.ops))
    if smart:
        print(f"smart/centre: catg {summary['smart_over_centre_catg']:.2f} (max {summary['smart_over_centre_catg_max']:.2f}), "
              f"sharp {summary['smart_over_centre_sharp']:.2f} (max {summary['smart_over_centre_sharp_max']:.2f})")
    print(f"wrote {out}")
    if args.gallery:
        gallery(photos, bench, sharp_js, Path(args.gallery), env)


def gallery(photos, bench, sharp_js, folder, env):
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["| photo | catg `g=smart` | sharp `attention` |", "|---|---|---|"]
    for photo in photos:
        catg, sharp = folder / f"{photo.stem}-catg.jpg", folder / f"{photo.stem}-sharp.jpg"
        tool_run([bench, "w=240&h=240&g=smart&fmt=jpeg&q=75", photo, "0", catg], env)
        tool_run(["node", sharp_js, "gallery", photo, "0", "1", sharp], env)
        lines.append(f"| {photo.name} | ![]({folder.name}/{catg.name}) | ![]({folder.name}/{sharp.name}) |")
    (folder / "table.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {folder}", file=sys.stderr)


if __name__ == "__main__":
    main()
