"""Job log files: where they live and reading their tail."""

from __future__ import annotations

import os
from pathlib import Path

from storage.layout import job_log_path


def log_path(store_dir: str | Path, job_id: str) -> Path:
    return job_log_path(store_dir, job_id)


def tail_lines(path: str | Path, lines: int, *, block: int = 8192) -> list[str]:
    """The last `lines` lines of a text file (reads backwards; [] when it does not exist)."""
    if lines <= 0:
        return []
    try:
        f = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return []
    with f:
        end = f.seek(0, os.SEEK_END)
        data = b""
        pos = end
        while pos > 0 and data.count(b"\n") <= lines:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    text = data.decode("utf-8", errors="replace")
    out = text.splitlines()
    return out[-lines:]
