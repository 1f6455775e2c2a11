"""Training faults: SIGKILL at seeded random moments never exposes a partial version, and
resuming from the checkpoint ends with samples identical to an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from storage.posterior import latest_version, list_versions, open_posterior
from tests.figures import record

ROOT = Path(__file__).resolve().parents[1]
KILLS = 3
SEED = 2026
# The smoke preset with more leapfrog steps per iteration, so each 10-iteration segment
# runs long enough (tenths of a second) for a kill to land inside it.
FLAGS = ["--preset", "smoke", "--segment-size", "10", "--num-leapfrog-steps", "300"]
TOTAL_ITERATIONS = 60  # smoke: 40 burn-in + 20 results
SEGMENT_LEAPFROG_STEPS = 10 * 300


def train(store: Path, progress: Path, cache: Path, *, resume: bool) -> subprocess.Popen:
    command = [sys.executable, "-m", "training", "train", *FLAGS, "--store", str(store)]
    command += ["--progress-jsonl", str(progress), "--keep-checkpoint"]
    command += ["--resume"] if resume else []
    env = {
        **os.environ,
        # Every run after the first loads its compiled programs instead of compiling.
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }
    log = (progress.parent / "train.log").open("ab")
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)


def progress_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def assert_nothing_partial(store: Path) -> None:
    """Whatever the store lists is a complete version that passes its checksums."""
    for info in list_versions(store):
        assert info.error is None, info
        open_posterior(store, info.version, verify=True).close()


def kill_when(
    process: subprocess.Popen, store: Path, progress: Path, *, iteration: int, fraction: float
) -> bool:
    """SIGKILL `process` once its progress reaches `iteration`, `fraction` of a segment's
    measured duration later (so the kill lands inside the next segment on any machine);
    False if it ended first. The store is checked for partial versions all along."""
    seen = len(progress_lines(progress))
    while process.poll() is None:
        assert_nothing_partial(store)
        fresh = progress_lines(progress)[seen:]
        reached = [line for line in fresh if line["iteration"] >= iteration]
        if reached:
            speed = reached[0]["leapfrog_per_s"]  # None on a compile line: kill at once
            time.sleep(fraction * SEGMENT_LEAPFROG_STEPS / speed if speed else 0.0)
            process.send_signal(signal.SIGKILL)
            process.wait()
            return process.returncode == -signal.SIGKILL
        time.sleep(0.005)
    return False


def samples_of(store: Path) -> dict[str, np.ndarray]:
    version = open_posterior(store, verify=True)
    try:
        return {**version.samples(), **version.traces}
    finally:
        version.close()


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_matches_an_uninterrupted_run(tmp_path):
    cache = tmp_path / "jax-cache"
    reference_store = tmp_path / "reference"
    reference = train(reference_store, tmp_path / "reference.jsonl", cache, resume=False)
    assert reference.wait(timeout=240) == 0, (tmp_path / "train.log").read_text()
    expected = samples_of(reference_store)

    rng = np.random.default_rng(SEED)
    thresholds = sorted(rng.choice(np.arange(10, TOTAL_ITERATIONS, 10), KILLS, replace=False))
    store, progress = tmp_path / "store", tmp_path / "progress.jsonl"
    killed_at = []
    for n, threshold in enumerate(thresholds):
        process = train(store, progress, cache, resume=n > 0)
        fraction = float(rng.uniform(0.0, 0.8))
        assert kill_when(process, store, progress, iteration=int(threshold), fraction=fraction), (
            f"run {n} ended before its kill at iteration {threshold}"
        )
        assert_nothing_partial(store)
        assert latest_version(store) is None, "a killed run published a version"
        killed_at.append(max(line["iteration"] for line in progress_lines(progress)))

    final = train(store, progress, cache, resume=True)
    assert final.wait(timeout=240) == 0, (tmp_path / "train.log").read_text()
    assert [v.error for v in list_versions(store)] == [None]
    resumed = samples_of(store)
    assert resumed.keys() == expected.keys()
    for name, array in expected.items():
        np.testing.assert_array_equal(resumed[name], array, err_msg=name)
    record("training_kills", kills=len(killed_at), progress_at_kill=killed_at)
