"""Run a command and measure its peak resident memory exactly, killing it if it goes past a guard.

An address-space limit (RLIMIT_AS) would be simpler, but it counts reservations, not memory: the
CUDA build of torch maps gigabytes of address space it never touches, and fails to import under a
1.5 GB limit. So the child runs unlimited, its resident set is watched, and the kernel's own
count of its peak (`ru_maxrss` from wait4) is the figure the tests compare.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence


@dataclass
class Measured:
    returncode: int
    stdout: str
    stderr: str
    peak_bytes: int  # the child's peak resident memory
    killed_over: bool  # the guard killed it for going past `guard_bytes`


def _resident(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def run_measured(args: Sequence[str], *, guard_bytes: int, timeout: float, cwd: Path | None = None,
                 env: Mapping[str, str] | None = None) -> Measured:
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(list(args), stdout=out, stderr=err, cwd=cwd, env=dict(env) if env else None, text=True)
        deadline = time.monotonic() + timeout
        killed = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if _resident(proc.pid) > guard_bytes and not killed:
                killed = True
                os.kill(proc.pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                os.kill(proc.pid, signal.SIGKILL)
                os.wait4(proc.pid, 0)
                raise subprocess.TimeoutExpired(list(args), timeout)
            time.sleep(0.01)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
        out.seek(0)
        err.seek(0)
        return Measured(proc.returncode, out.read(), err.read(), usage.ru_maxrss * 1024, killed)
