"""Run a command and measure its peak resident memory exactly, killing it if it goes past a guard.

An address-space limit (RLIMIT_AS) would be simpler, but it counts reservations, not memory: the
CUDA build of torch maps gigabytes of address space it never touches, and fails to import under a
1.5 GB limit. So the command runs unlimited, its resident set is watched, and the kernel's own
count of its peak (`ru_maxrss`) is the figure the tests compare.

The command is started by a small parent of its own: a child forked straight from the test
process would start with the test process's resident pages counted in its peak.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

_PARENT = r"""
import json, os, resource, signal, subprocess, sys, time
report, guard, timeout, args = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]

def resident(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0

proc = subprocess.Popen(args)
deadline, killed, timed_out = time.monotonic() + timeout, False, False
while proc.poll() is None:
    if not killed and resident(proc.pid) > guard:
        killed = True
        proc.kill()
    if time.monotonic() > deadline:
        timed_out = True
        proc.kill()
    time.sleep(0.01)
with open(report, "w") as f:
    json.dump({"returncode": proc.returncode, "killed": killed, "timed_out": timed_out,
               "peak": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}, f)
"""


@dataclass
class Measured:
    returncode: int
    stdout: str
    stderr: str
    peak_bytes: int  # the command's peak resident memory
    killed_over: bool  # the guard killed it for going past `guard_bytes`


def run_measured(args: Sequence[str], *, guard_bytes: int, timeout: float, cwd: Path | None = None,
                 env: Mapping[str, str] | None = None) -> Measured:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        done = subprocess.run([sys.executable, "-c", _PARENT, str(report), str(guard_bytes), str(timeout), *args],
                              capture_output=True, text=True, cwd=cwd, env=dict(env) if env else None,
                              timeout=timeout + 30)
        r = json.loads(report.read_text())
    if r["timed_out"]:
        raise subprocess.TimeoutExpired(list(args), timeout)
    return Measured(r["returncode"], done.stdout, done.stderr, r["peak"], r["killed"])
