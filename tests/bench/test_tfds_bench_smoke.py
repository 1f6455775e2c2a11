"""bench/tfds_load.py runs end to end at a tiny scale (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_tfds_bench_prepares_and_loads_cold_then_cached(tmp_path):
    cmd = [sys.executable, str(ROOT / "bench" / "tfds_load.py"), "--size", "100k"]
    cmd += ["--scale", "0.01", "--workdir", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    results = [line for line in out.stdout.splitlines() if line.startswith("RESULT")]
    assert [line.split()[2] for line in results] == ["cold", "cached"], out.stdout
    # 1% of ml-100k's ratings, 10% of its users and movies: every distinct rating a watch.
    assert all("94 x 168, 1000 watches" in line for line in results), results
    assert (tmp_path / "cache-100k" / ".cache" / "tfds").is_dir()
