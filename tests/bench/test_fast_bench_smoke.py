"""bench/train_throughput.py runs end to end on a tiny problem (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_throughput_bench_runs_on_two_fake_devices():
    cmd = [
        sys.executable,
        str(ROOT / "bench" / "train_throughput.py"),
        "--devices",
        "2",
        "--users",
        "41",
        "--movies",
        "23",
        "--dim",
        "3",
        "--leapfrog",
        "3",
        "--iterations",
        "1",
        "--segments",
        "1",
        "--block-size",
        "8",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    results = [line for line in out.stdout.splitlines() if line.startswith("RESULT")]
    assert any("fast:" in line for line in results), out.stdout
    assert any("reference:" in line for line in results), out.stdout
    assert any("speedup" in line for line in results), out.stdout
