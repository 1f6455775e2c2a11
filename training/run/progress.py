"""Progress sinks: a live line on a terminal, plain lines otherwise, and a JSON-lines file."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

__all__ = [
    "ConsolePrinter",
    "JsonlWriter",
    "Payload",
    "fan_out",
    "format_progress",
]

Payload = dict[str, Any]


def format_progress(p: Payload) -> str:
    """One human line: phase, iteration/total, leapfrog/s, acceptance, step size, ETA."""
    parts = [f"{p['phase']:<8}", f"{p['iteration']:>6}/{p['total']}"]
    if p.get("leapfrog_per_s") is not None:
        parts.append(f"{p['leapfrog_per_s']:8.1f} leapfrog/s")
    if p.get("acceptance") is not None:
        parts.append(f"accept {p['acceptance']:.2f}")
    if p.get("step_size") is not None:
        parts.append(f"step {p['step_size']:.3g}")
    if p.get("eta_s") is not None:
        eta = round(p["eta_s"])
        parts.append(f"eta {eta // 60}:{eta % 60:02d}")
    return "  ".join(parts)


class ConsolePrinter:
    """Rewrites one line on a TTY (with a bar); prints one line per update otherwise."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live

    def __call__(self, p: Payload) -> None:
        if p.get("sizes"):  # the memory plan, once before compiling
            print(p["sizes"]["summary"], file=self.stream, flush=True)
        line = format_progress(p)
        if not self.live:
            print(line, file=self.stream, flush=True)
            return
        done = p["iteration"] / max(1, p["total"])
        bar = "#" * int(24 * done) + "-" * (24 - int(24 * done))
        end = "\n" if p["iteration"] >= p["total"] and p["phase"] != "compile" else ""
        self.stream.write(f"\r[{bar}] {line}\x1b[K{end}")
        self.stream.flush()


class JsonlWriter:
    """Appends one JSON object per update to `path` (for an external follower)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, p: Payload) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(p) + "\n")


def fan_out(sinks: Iterable[Callable[[Payload], None] | None]) -> Callable[[Payload], None]:
    """One callback that forwards every update to each sink."""
    active = [s for s in sinks if s is not None]

    def emit(p: Payload) -> None:
        for sink in active:
            sink(p)

    return emit
