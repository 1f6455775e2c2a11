"""Small posteriors for the storage tests, and entry points for their subprocesses."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from training.data import SyntheticSpec, WatchData, generate

ROOT = Path(__file__).resolve().parents[2]
DRAWS, CHAINS = 4, 2


@functools.cache
def small_data() -> WatchData:
    return generate(SyntheticSpec(num_users=30, num_movies=20, latent_dim=3))


def make_samples(
    data: WatchData, *, seed: int = 0, draws: int = DRAWS, chains: int = CHAINS, dim: int = 3
) -> dict[str, np.ndarray]:
    """Random float32 samples in the reference shapes [S, C, ...]."""
    rng = np.random.default_rng(seed)
    n, m = data.num_users, data.num_movies

    def draw(*shape: int) -> np.ndarray:
        return rng.normal(size=(draws, chains, *shape)).astype(np.float32)

    return {
        "user_embeddings": draw(n, dim),
        "user_bias": draw(n),
        "movie_embeddings": draw(m, dim),
        "movie_bias": draw(m),
    }


def publish_small(store: Path | str, *, seed: int = 0, **kwargs) -> str:
    from storage.posterior import publish_posterior

    data = small_data()
    options = {
        "config": {"preset": "test", "seed": seed},
        "traces": {"target_log_prob": np.full((5, CHAINS), float(seed), np.float32)},
        "diagnostics": {"seed": seed},
        **kwargs,
    }
    return publish_posterior(store, samples=make_samples(data, seed=seed), data=data, **options)


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def spawn_helper(*args: str, **kwargs) -> subprocess.Popen:
    """Run one of this module's helper functions in a fresh Python process."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.storage_helpers", *args],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def slow_publisher(store: str, files_before_pause: str) -> None:
    """Publish, but stall for a minute after writing some files, or in the middle of the
    first file when `files_before_pause` is 0 (so a test can kill it there)."""
    from storage import fsio

    write, written = fsio.write_chunks, []

    def stall_after_first(chunks):
        for k, chunk in enumerate(chunks):
            yield chunk
            if k == 0:  # the .npy header is written, the data is not
                print("wrote part of a file", flush=True)
                time.sleep(60)

    def slow_write(path, chunks):
        if int(files_before_pause) == 0:
            chunks = stall_after_first(chunks)
        result = write(path, chunks)
        written.append(path)
        print(f"wrote {path}", flush=True)
        if len(written) == int(files_before_pause):
            time.sleep(60)
        return result

    fsio.write_chunks = slow_write
    publish_small(store, seed=99)


def repeat_publisher(store: str, count: str, seed: str) -> None:
    for k in range(int(count)):
        print(publish_small(store, seed=int(seed) + k), flush=True)


def progress_writer(db: str, job_id: str, count_text: str) -> None:
    count = int(count_text)
    from storage.job_store import JobStore

    jobs = JobStore(db)
    for i in range(1, count + 1):
        jobs.update_progress(job_id, {"phase": "sampling", "iteration": i, "total": count})
    jobs.finish(job_id, "succeeded", version="v-test")


def claimer(db: str) -> None:
    from storage.job_store import JobStore

    jobs = JobStore(db)
    while (job := jobs.claim_next_queued(pid=os.getpid())) is not None:
        print(job.id, flush=True)


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
