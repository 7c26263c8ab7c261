#!/usr/bin/env python3
"""The Lambda functions' size, cold-start init time and memory, and render memory per megapixel:
the figures the template's memory settings are derived from.

    bench/lambda.py [--rounds 5] [--render-only]

1. Builds the three functions as deployed (`cargo lambda build --release`: x86_64, zig-linked)
   and reports each bootstrap's size and zipped size.
2. Init: starts each bootstrap against a minimal Lambda Runtime API on loopback and measures the
   time from process start to its first `GET /runtime/invocation/next` (everything the function
   does before it can take a request: config, SDK clients, TLS roots), and its RSS then.
3. Render memory: peak RSS (wait4) of `catg render` on sources of growing size, for inputs that
   shrink on load (JPEG) and ones that do not (PNG), as MB per source megapixel.
"""

import argparse
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

from measure import measured, require_gnu_time

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
TOOLS = Path(os.environ.get("CATG_TOOLS", TARGET / "tools"))


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    """Records when the function first asks for work, then keeps it waiting."""
    first_poll = None
    polled = threading.Event()

    def do_GET(self):  # noqa: N802 (the stdlib's name)
        if self.path.endswith("/runtime/invocation/next"):
            RuntimeApi.first_poll = time.perf_counter()
            RuntimeApi.polled.set()
            time.sleep(5)  # long-poll: the function waits here until we kill it
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args):
        pass


def measure_init(bootstrap, rounds):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "PATH": os.environ["PATH"], "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_port}",
        "AWS_LAMBDA_FUNCTION_NAME": "catg-bench", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512", "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "CATG_SOURCE_BUCKET": "src", "CATG_VARIANTS_BUCKET": "var", "CATG_TABLE": "catg",
        "CATG_QUEUE_URL": "http://127.0.0.1:1/000000000000/jobs",
    }
    times, rss = [], []
    for _ in range(rounds):
        RuntimeApi.polled.clear()
        started = time.perf_counter()
        proc = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not RuntimeApi.polled.wait(10):
            proc.kill()
            sys.exit(f"{bootstrap} never polled the Runtime API: {proc.stderr.read().decode()[-500:]}")
        times.append((RuntimeApi.first_poll - started) * 1e3)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        rss.append(int(next(l for l in status.splitlines() if l.startswith("VmRSS")).split()[1]) / 1024)
        proc.kill()
        proc.wait()
    server.shutdown()
    return statistics.median(times), statistics.median(rss)


def peak_rss_mb(cmd):
    result, _, rss = measured(cmd)
    if result.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed: {result.stderr[-500:]}")
    return rss / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--render-only", action="store_true", help="only part 3 (no cargo-lambda build)")
    args = parser.parse_args()
    require_gnu_time()
    if not args.render_only:
        functions(args.rounds)
    render_memory()


def functions(rounds):
    env = {**os.environ, "PATH": f"{TOOLS / 'venv/bin'}:{os.environ['PATH']}"}
    for package in ("catg-fn-ingest", "catg-fn-resolver", "catg-fn-transform"):
        # One package per build, as `sam build` does: features resolve per function.
        subprocess.run(["cargo", "lambda", "build", "--release", "-q", "-p", package], cwd=ROOT, env=env, check=True)
    print("function   bootstrap   zipped   init (start -> first poll)   RSS at first poll")
    for name in ("ingest", "resolver", "transform"):
        bootstrap = TARGET / f"lambda/{name}/bootstrap"
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "f.zip"
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
                z.write(bootstrap, "bootstrap")
            zipped = archive.stat().st_size
        init_ms, rss = measure_init(bootstrap, rounds)
        print(f"{name:10} {bootstrap.stat().st_size / 2**20:7.1f} MB {zipped / 2**20:6.1f} MB {init_ms:14.1f} ms {rss:22.1f} MB")


def render_memory():
    subprocess.run(["cargo", "build", "--release", "--locked", "-q", "-p", "catg-cli"], cwd=ROOT, check=True)
    catg = TARGET / "release/catg"
    corpus = Path(os.environ.get("CATG_CORPUS", ROOT.parent / "shared/corpus"))
    photos = ROOT.parent / "shared/photos"
    inputs = [p for p in [photos / "mate_Storm.jpg", photos / "Kleiber_by_Lukas_Baubkus.jpg", corpus / "large_50mp.jpg",
                          photos / "coffee.png", photos / "aitzgorri_derived.png"] if p.exists()]
    print("\nrender peak RSS (catg render, one process per render)")
    print("source                               MP    w=400 webp   w=1200 jpeg   w=4000 jpeg      MB/MP (largest)")
    with tempfile.TemporaryDirectory() as tmp:
        for source in inputs:
            info = json.loads(subprocess.run([catg, "inspect", source], capture_output=True, text=True, check=True).stdout)
            mp = info["width"] * info["height"] / 1e6
            peaks = [peak_rss_mb([catg, "render", source, "--recipe", recipe, "-o", f"{tmp}/out"])
                     for recipe in ("w=400&fmt=webp", "w=1200&fmt=jpeg", "w=4000&fmt=jpeg")]
            print(f"{source.name[:34]:34} {mp:6.2f} {peaks[0]:9.1f} MB {peaks[1]:10.1f} MB {peaks[2]:13.1f} MB {max(peaks) / mp:12.1f}")


if __name__ == "__main__":
    main()
