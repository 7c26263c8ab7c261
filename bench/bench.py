#!/usr/bin/env python3
"""catg's pipeline vs sharp (libvips, in-process) vs vipsthumbnail (libvips, one process per
image), side by side, in one run on this machine.

    bench/bench.py [--photos DIR] [--rounds 3] [--iters 3] [--threads 1] [--only PHOTO...] [--json FILE]
                   [--as-webp]

For every photo (JPEG and PNG) in ../shared/photos and every op (400 px WebP q80, 1200 px JPEG
q80, 400 px AVIF), the three tools run interleaved (catg, sharp, vips, catg, sharp, vips, …) so
drift hits all of them alike. Each catg/sharp run is one process doing a warm-up and --iters
timed renders (median); each vips run is one vipsthumbnail process (its time includes process
start, ~10 ms). The reported time is the median over rounds. Peak RSS is each process's, as GNU
time reports it. Quality
is DSSIM (lower is better) against an ideal reference: full-resolution decode, orientation, sRGB,
then floating-point Lanczos3 by the `image` crate (independent of both resamplers), and catg's
output against sharp's. --threads sets every tool's thread count (RAYON_NUM_THREADS for catg's
AVIF encoder, sharp.concurrency, VIPS_CONCURRENCY). --as-webp runs the same photos as WebP
inputs (each converted by vips first: JPEGs to lossy WebP q90, PNGs to lossless), for the
WebP decoders (libwebp's scaled decode in catg, libvips' webpload in sharp).

Prints a table and writes the whole run as JSON (default bench/results/<date>-t<threads>.json).
Installs sharp with npm into bench/node_modules on first use; needs vipsthumbnail
(apt-get install libvips-tools).
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from measure import measured, require_gnu_time

ROOT = Path(__file__).resolve().parent.parent
OPS = {
    "webp400": {"width": 400, "ext": "webp", "vips": "[Q=80]"},
    "jpeg1200": {"width": 1200, "ext": "jpg", "vips": "[Q=80,optimize_coding]"},
    "avif400": {"width": 400, "ext": "avif", "vips": "[Q=50]"},
}


def portable(settings):
    """The run's settings with paths made relative to the repo, so results name no machine."""
    out = dict(settings)
    for key in ("photos", "json"):
        if out.get(key):
            out[key] = os.path.relpath(os.path.abspath(out[key]), ROOT)
    return out


def fail(message):
    print(f"bench: {message}", file=sys.stderr)
    sys.exit(1)


def run(cmd, env=None, **kw):
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, **kw)
    if result.returncode != 0:
        fail(f"{' '.join(map(str, cmd))} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def setup():
    if not shutil.which("node") or not shutil.which("npm"):
        fail("node and npm are needed for sharp (apt-get install nodejs npm)")
    require_gnu_time()
    if not shutil.which("vipsthumbnail"):
        fail("vipsthumbnail is needed (apt-get install libvips-tools)")
    if not (ROOT / "bench/node_modules/sharp").is_dir():
        print("== installing sharp (npm)", file=sys.stderr)
        run(["npm", "install", "--no-save", "--silent", "sharp"], cwd=ROOT / "bench")
    # BENCH_PROFILE=dev reuses the test build's target dir (with CARGO_PROFILE_DEV_OPT_LEVEL=3
    # for figures near a release build's) when a release build does not fit the time at hand.
    profile = os.environ.get("BENCH_PROFILE", "release")
    print(f"== building catg-bench ({profile})", file=sys.stderr)
    run(["cargo", "build", "--profile", profile, "--locked", "-q", "-p", "catg-bench"], cwd=ROOT)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / ("debug" if profile == "dev" else profile) / "catg-bench"


def checked(cmd, env):
    """`measured`, failing the run if the command fails: (stdout, wall ms, peak RSS KB)."""
    result, elapsed, rss = measured(cmd, env)
    if result.returncode != 0:
        fail(f"{' '.join(map(str, cmd))} failed:\n{result.stderr[-2000:]}")
    return result.stdout, elapsed * 1e3, rss


def select_photos(folder, only, suffixes=(".jpg", ".jpeg", ".png")):
    """The photos in `folder` with those suffixes, sorted; only the named ones when `only` is
    given. Fails the run when none are left."""
    photos = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in suffixes)
    if only:
        photos = [p for p in photos if p.name in only]
    if not photos:
        fail(f"no photos in {folder}")
    return photos


def as_png(path):
    """catg-bench is built like the transform Lambda, without an AVIF decoder: libvips (through
    libheif) turns AVIF outputs into PNG for the DSSIM comparison."""
    path = Path(path)
    if path.suffix != ".avif":
        return path
    png = path.with_suffix(".avif.png")
    run(["vips", "copy", path, png])
    return png


def as_webp(photos):
    """WebP copies of `photos` in a temporary folder (EXIF kept): lossy q90 from JPEG, lossless
    from PNG, as an upload would most likely be."""
    folder = Path(tempfile.mkdtemp(prefix="catg-bench-webp-"))
    out = []
    for photo in photos:
        target = folder / f"{photo.stem}.webp"
        options = "[lossless]" if photo.suffix.lower() == ".png" else "[Q=90]"
        run(["vips", "copy", photo, f"{target}{options}"])
        out.append(target)
    return out


def vips_run(photo, op, out, env):
    """One vipsthumbnail process: wall time and peak RSS."""
    spec = OPS[op]
    _, elapsed, rss = checked(["vipsthumbnail", photo, "--size", f"{spec['width']}x", "-o", f"{out}{spec['vips']}"], env)
    return {"median_ms": round(elapsed, 2), "maxrss_kb": rss, "out_bytes": Path(out).stat().st_size}


def tool_run(cmd, env):
    """catg-bench or sharp_bench.js: their JSON line, with the peak RSS GNU time saw."""
    stdout, _, rss = checked(cmd, env)
    result = json.loads(stdout)
    result["maxrss_kb"] = rss
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", default=str(ROOT.parent / "shared/photos"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ops", nargs="*", default=list(OPS))
    parser.add_argument("--only", nargs="*", help="photo file names to run (default: all)")
    parser.add_argument("--json", help="where to write the results")
    parser.add_argument("--as-webp", action="store_true", help="convert every photo to WebP first and run those")
    args = parser.parse_args()

    photos = sorted(p for p in Path(args.photos).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    if args.only:
        photos = [p for p in photos if p.name in args.only]
    if args.as_webp:
        photos = as_webp(photos)
    if not photos:
        fail(f"no photos in {args.photos}")
    bench = setup()
    sharp_js = ROOT.parent / "shared/peers/sharp_bench.js"
    if not sharp_js.is_file():
        fail(f"{sharp_js} not found")
    t = str(args.threads)
    env = {**os.environ, "NODE_PATH": str(ROOT / "bench/node_modules"), "RAYON_NUM_THREADS": t,
           "VIPS_CONCURRENCY": t, "UV_THREADPOOL_SIZE": t}
    versions = {
        "sharp": json.loads(run(["node", "-e", "const s=require('sharp');console.log(JSON.stringify(s.versions))"], env=env)),
        "vipsthumbnail": run(["vipsthumbnail", "--vips-version"], env=env).strip(),
        "catg": run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT).strip(),
    }
    work = Path(tempfile.mkdtemp(prefix="catg-bench-"))
    rows = []
    try:
        for photo in photos:
            for op in args.ops:
                spec = OPS[op]
                outs = {tool: work / f"{photo.stem}-{op}-{tool}.{spec['ext']}" for tool in ("catg", "sharp", "vips")}
                samples = {tool: [] for tool in outs}
                for _ in range(args.rounds):
                    c = tool_run([bench, op, photo, str(args.iters), outs["catg"]], env)
                    s = tool_run(["node", sharp_js, op, photo, str(args.iters), t, outs["sharp"]], env)
                    v = vips_run(photo, op, outs["vips"], env)
                    for tool, r in (("catg", c), ("sharp", s), ("vips", v)):
                        samples[tool].append(r)
                    if c["out_w"] < spec["width"]:
                        break
                row = {"photo": photo.name, "op": op, "threads": args.threads}
                if samples["catg"][-1]["out_w"] < spec["width"]:
                    # catg never enlarges unless asked (enlarge=1); sharp does: not comparable.
                    print(f"{photo.name[:34]:34} {op:8}  skipped: narrower than {spec['width']} px", file=sys.stderr)
                    continue
                if photo.suffix.lower() in (".jpg", ".jpeg"):
                    # Stock libjpeg-turbo's entropy decoding (catg goes below it on progressive JPEGs).
                    floor = json.loads(run([bench, "jpeg-floor", photo, str(args.iters)], env=env))["floor_ms"]
                    row["jpeg_floor_ms"] = floor
                reference = work / f"{photo.stem}-{op}-ref.png"
                run([bench, "reference", photo, str(spec["width"]), reference])
                decodable = {tool: as_png(out) for tool, out in outs.items()}
                for tool, runs in samples.items():
                    row[tool] = {
                        "ms": round(statistics.median(r["median_ms"] for r in runs), 2),
                        "rss_mb": round(max(r["maxrss_kb"] for r in runs) / 1024, 1),
                        "bytes": runs[-1]["out_bytes"],
                        "dssim_ref": json.loads(run([bench, "dssim", reference, decodable[tool]]))["dssim"],
                    }
                row["dssim_catg_vs_sharp"] = json.loads(run([bench, "dssim", decodable["sharp"], decodable["catg"]]))["dssim"]
                row["time_ratio"] = round(row["catg"]["ms"] / row["sharp"]["ms"], 3)
                row["rss_ratio"] = round(row["catg"]["rss_mb"] / row["sharp"]["rss_mb"], 3)
                row["bytes_ratio"] = round(row["catg"]["bytes"] / row["sharp"]["bytes"], 3)
                rows.append(row)
                print(f"{photo.name[:34]:34} {op:8}  catg {row['catg']['ms']:7.1f} ms {row['catg']['rss_mb']:6.1f} MB "
                      f"{row['catg']['bytes']:8d} B dssim {row['catg']['dssim_ref']:.5f} | "
                      f"sharp {row['sharp']['ms']:7.1f} ms {row['sharp']['rss_mb']:6.1f} MB {row['sharp']['bytes']:8d} B "
                      f"dssim {row['sharp']['dssim_ref']:.5f} | vips {row['vips']['ms']:7.1f} ms | "
                      f"ratio {row['time_ratio']:.2f}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    summary = {}
    for op in args.ops:
        r = [row for row in rows if row["op"] == op]
        summary[op] = {
            "photos": len(r),
            "median_time_ratio_vs_sharp": round(statistics.median(x["time_ratio"] for x in r), 3),
            "median_time_ratio_vs_vipsthumbnail": round(statistics.median(x["catg"]["ms"] / x["vips"]["ms"] for x in r), 3),
            "median_rss_ratio_vs_sharp": round(statistics.median(x["rss_ratio"] for x in r), 3),
            "max_rss_ratio_vs_sharp": round(max(x["rss_ratio"] for x in r), 3),
            "median_bytes_ratio_vs_sharp": round(statistics.median(x["bytes_ratio"] for x in r), 3),
            "median_dssim_catg": statistics.median(x["catg"]["dssim_ref"] for x in r),
            "median_dssim_sharp": statistics.median(x["sharp"]["dssim_ref"] for x in r),
            "median_dssim_vips": statistics.median(x["vips"]["dssim_ref"] for x in r),
            "photos_where_catg_dssim_le_sharp": sum(x["catg"]["dssim_ref"] <= x["sharp"]["dssim_ref"] for x in r),
        }
        floors = [x for x in r if "jpeg_floor_ms" in x]
        if floors:
            # How much of sharp's time stock libjpeg-turbo spends decoding entropy.
            summary[op]["median_jpeg_floor_ratio_vs_sharp"] = round(
                statistics.median(x["jpeg_floor_ms"] / x["sharp"]["ms"] for x in floors), 3)
            summary[op]["median_catg_above_floor_ratio_vs_sharp_above_floor"] = round(statistics.median(
                (x["catg"]["ms"] - x["jpeg_floor_ms"]) / max(x["sharp"]["ms"] - x["jpeg_floor_ms"], 1e-3)
                for x in floors), 3)
    machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "system": platform.platform()}
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "machine": machine,
              "versions": versions, "settings": portable(vars(args)), "summary": summary, "rows": rows}
    out = Path(args.json) if args.json else ROOT / f"bench/results/{datetime.date.today()}-t{args.threads}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str))

    print(f"\ncatg {versions['catg']} vs sharp {versions['sharp'].get('sharp')} (libvips {versions['sharp'].get('vips')}) "
          f"vs {versions['vipsthumbnail']}; {machine['cpu']}, {args.threads} thread(s); medians over {len(photos)} photos")
    print(f"{'op':9} {'time catg/sharp':>15} {'catg/vips':>10} {'RSS catg/sharp (max)':>21} {'bytes catg/sharp':>17} "
          f"{'DSSIM catg':>11} {'sharp':>9} {'vips':>9} {'catg<=sharp':>12}")
    for op, s in summary.items():
        print(f"{op:9} {s['median_time_ratio_vs_sharp']:15.2f} {s['median_time_ratio_vs_vipsthumbnail']:10.2f} "
              f"{s['median_rss_ratio_vs_sharp']:13.2f} ({s['max_rss_ratio_vs_sharp']:.2f}) {s['median_bytes_ratio_vs_sharp']:17.2f} "
              f"{s['median_dssim_catg']:11.5f} {s['median_dssim_sharp']:9.5f} {s['median_dssim_vips']:9.5f} "
              f"{s['photos_where_catg_dssim_le_sharp']:>7}/{s['photos']}")
    for op, s in summary.items():
        if "median_jpeg_floor_ratio_vs_sharp" in s:
            print(f"{op:9} JPEG inputs: stock libjpeg-turbo's entropy decoding alone is {s['median_jpeg_floor_ratio_vs_sharp']:.2f}"
                  f" of sharp's time; above it catg takes {s['median_catg_above_floor_ratio_vs_sharp_above_floor']:.2f}"
                  f" of sharp's time")
    print(f"\nwrote {out}")


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
