"""bench/foldin_speed.py runs end to end at a tiny scale (no timing asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_foldin_speed_bench_compares_both_methods():
    cmd = [sys.executable, str(ROOT / "bench" / "foldin_speed.py"), "--samples", "6", "12"]
    cmd += ["--movies", "50", "--dim", "3", "--calls", "3", "--exact-calls", "2"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("laplace_fold_in (served)") == 2, out.stdout
    assert out.stdout.count("over 2 calls") == 2, out.stdout
    # The served method agrees with the reference far below the tests' tolerance.
    diffs = re.findall(r"probability difference\| ([0-9.e+-]+)", out.stdout)
    assert len(diffs) == 2 and all(float(d) < 1e-3 for d in diffs), out.stdout
