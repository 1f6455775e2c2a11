"""bench/mixing.py runs end to end on a tiny problem and prints every row (no timing asserted)."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mixing_bench_prints_identity_diagonal_and_ratio():
    with_numpyro = importlib.util.find_spec("numpyro") is not None
    cmd = [
        sys.executable,
        str(ROOT / "bench" / "mixing.py"),
        *("--scale", "0.01", "--dim", "2", "--chains", "2", "--leapfrog", "3"),
        *("--burnin", "30", "--results", "20"),
        *(() if with_numpyro else ("--no-numpyro",)),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    rows = {
        name: next(line for line in lines if line.startswith(name))
        for name in ("shardlens identity", "shardlens diagonal")
        + (("numpyro 30+20",) if with_numpyro else ())
    }
    for line in rows.values():
        # ESS per 1000 gradients (3 figures), then per second: all finite and positive
        figures = [float(x) for x in line.split("|")[0].split()[-3:]]
        assert all(math.isfinite(x) and x > 0 for x in figures), line
        # 20 draws x 3 leapfrog steps = 60 gradients in the sampling phase
        assert " 60 " in line.split("|")[3], line
    assert any(line.startswith("RATIO diagonal / identity") for line in lines), out.stdout
