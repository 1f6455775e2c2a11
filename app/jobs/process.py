"""OS-level helpers for job processes: liveness, identity, signals, exit descriptions."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def read_cmdline(pid: int) -> list[str] | None:
    """The process's argv from /proc (None when it is gone or a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not raw:  # zombies and kernel threads have an empty cmdline
        return None
    return raw.rstrip(b"\0").decode(errors="replace").split("\0")


def is_job_process(pid: int, job_id: str) -> bool:
    """True when `pid` is alive and is the training process of `job_id` (not a reused pid)."""
    argv = read_cmdline(pid)
    return argv is not None and job_id in argv


def reap(pid: int) -> int | None:
    """The exit status (Popen convention: -N for signal N) when `pid` is our finished child;
    None when it still runs or is not our child."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    if done == 0:
        return None
    return os.waitstatus_to_exitcode(status)


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send `sig` to the process group led by `pid` (jobs start in their own session);
    nothing happens when it is already gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def describe_exit(returncode: int | None) -> str:
    """Why a training process ended without reporting a result."""
    if returncode is None:
        return "the training process ended without reporting a result (exit status unknown)"
    if returncode < 0:
        sig = -returncode
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        hint = " (out of memory, or killed by hand?)" if sig == signal.SIGKILL else ""
        return f"the training process was killed by {name}{hint}"
    return f"the training process exited with code {returncode} without reporting a result"
