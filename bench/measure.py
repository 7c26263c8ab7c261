"""One way for the bench scripts to run a command and measure it: wall time and the command's
own peak RSS, as GNU time reports it. (wait4 from Python would count the pages of the forked
Python process, ~13 MB, into small children.)"""

import subprocess
import sys
import time
from pathlib import Path


def require_gnu_time():
    if not Path("/usr/bin/time").exists():
        sys.exit("GNU time measures peak RSS (apt-get install time)")


def measured(cmd, env=None):
    """Run `cmd`: (completed process with stdout/stderr as text, wall seconds, peak RSS in KB)."""
    started = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "maxrss_kb=%M", *map(str, cmd)], capture_output=True, text=True,
                            env=env)
    elapsed = time.perf_counter() - started
    lines = result.stderr.rstrip().splitlines()
    rss = int(lines[-1].split("=")[1]) if lines and lines[-1].startswith("maxrss_kb=") else 0
    result.stderr = "\n".join(lines[:-1])
    return result, elapsed, rss
