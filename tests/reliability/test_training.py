"""Training faults: a training job's process is SIGKILLed at seeded random moments. The job
is reported `failed`, no partial version is ever visible, and resuming the job from its
checkpoint ends with samples identical to an uninterrupted run."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from app.jobs.runner import JobRunner
from storage.job_record import Job
from storage.job_store import JobStore
from storage.posterior import latest_version, list_versions, open_posterior
from tests.helpers.figures import record
from tests.helpers.job_helpers import child_env, kill_leftovers, wait_for

ROOT = Path(__file__).resolve().parents[2]
KILLS = 3
SEED = 2026
# The smoke preset with more leapfrog steps per iteration and 10-iteration segments, so
# each segment runs long enough (tenths of a second) for a kill to land inside it.
CONFIG = {"preset": "smoke", "num_leapfrog_steps": 300}
PROGRAM = (sys.executable, "-m", "training", "train", "--segment-size", "10")
SEGMENT_LEAPFROG_STEPS = 10 * 300
TOTAL_ITERATIONS = 60  # smoke: 40 burn-in + 20 results


def environment(cache: Path) -> dict[str, str]:
    """Every process after the first loads its compiled programs instead of compiling."""
    return {
        **child_env(),
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }


def assert_nothing_partial(store: Path) -> None:
    """Whatever the store lists is a complete version that passes its checksums."""
    for info in list_versions(store):
        assert info.error is None, info
        open_posterior(store, info.version, verify=True).close()


def kill_when(jobs: JobStore, job_id: str, store: Path, *, iteration: int, fraction: float) -> int:
    """SIGKILL the job's process group once its progress reaches `iteration`, `fraction` of a
    segment's measured duration later (so the kill lands inside the next segment on any
    machine). Returns the iteration last reported. The store is checked all along."""
    while True:
        job = jobs.get(job_id)
        assert job.status in ("queued", "running"), f"job ended before its kill: {job}"
        assert_nothing_partial(store)
        if job.status == "running" and job.pid and (job.iteration or 0) >= iteration:
            speed = job.leapfrog_per_s
            time.sleep(fraction * SEGMENT_LEAPFROG_STEPS / speed if speed else 0.0)
            os.killpg(job.pid, signal.SIGKILL)
            return int(jobs.get(job_id).iteration or 0)
        time.sleep(0.005)


def finished(jobs: JobStore, job_id: str, timeout_s: float = 240.0) -> Job:
    return wait_for(
        lambda: (j := jobs.get(job_id)).finished and j, timeout_s=timeout_s, what=job_id
    )


def samples_of(store: Path, version: str = "latest") -> dict[str, np.ndarray]:
    posterior = open_posterior(store, version, verify=True)
    try:
        return {**posterior.samples(), **posterior.traces}
    finally:
        posterior.close()


@pytest.mark.slow
def test_sigkilled_training_job_fails_and_resumes_to_identical_samples(tmp_path):
    cache = tmp_path / "jax-cache"
    reference_store = tmp_path / "reference"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in CONFIG.items()]
    reference = subprocess.run(
        [*PROGRAM, *flags, "--store", str(reference_store)],
        cwd=ROOT,
        env=environment(cache),
        capture_output=True,
        timeout=300,
    )
    assert reference.returncode == 0, reference.stderr.decode()
    expected = samples_of(reference_store)

    store = tmp_path / "store"
    runner = JobRunner(
        store_dir=store, program=PROGRAM, env=environment(cache), poll_interval_s=0.05
    )
    jobs = runner.store
    job_id = jobs.create(config=CONFIG).id
    rng = np.random.default_rng(SEED)
    thresholds = sorted(rng.choice(np.arange(10, TOTAL_ITERATIONS, 10), KILLS, replace=False))
    killed_at = []
    runner.start()
    try:
        for n, threshold in enumerate(thresholds):
            if n:
                jobs.requeue(job_id)  # what POST /jobs/{id}/resume does
                runner.wake()
            fraction = float(rng.uniform(0.0, 0.8))
            killed_at.append(
                kill_when(jobs, job_id, store, iteration=int(threshold), fraction=fraction)
            )
            failed = finished(jobs, job_id, timeout_s=30)
            assert failed.status == "failed" and "SIGKILL" in (failed.error or ""), failed
            assert failed.version is None
            assert_nothing_partial(store)
            assert latest_version(store) is None, "a killed run published a version"

        jobs.requeue(job_id)
        runner.wake()
        done = finished(jobs, job_id)
        assert done.status == "succeeded", done
        assert done.attempts == KILLS + 1
    finally:
        runner.stop()
        with contextlib.suppress(Exception):
            kill_leftovers(store)
    assert [v.version for v in list_versions(store)] == [done.version]
    resumed = samples_of(store, done.version)
    assert resumed.keys() == expected.keys()
    for name, array in expected.items():
        np.testing.assert_array_equal(resumed[name], array, err_msg=name)
    record("training_kills", kills=len(killed_at), reported_iteration_at_kill=killed_at)
