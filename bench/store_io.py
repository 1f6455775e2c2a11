"""Posterior store I/O at a chosen size (default: ml-1m, 500 draws x 2 chains, D=20).

Prints publish time, open time with and without sha256 verification, per-user read time and
resident memory after opening. Usage: PYTHONPATH=. python bench/store_io.py [--users N --movies M ...]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from storage.posterior import open_posterior, publish_posterior
from training.data import SyntheticSpec, generate


def rss_mib() -> dict[str, float]:
    """Resident memory: private (RssAnon) and file-backed, i.e. mapped page cache (RssFile)."""
    found = {}
    with open("/proc/self/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("RssAnon", "RssFile"):
                found[key] = int(line.split()[1]) / 1024
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=6040)
    parser.add_argument("--movies", type=int, default=3706)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--dim", type=int, default=20)
    parser.add_argument("--store", type=Path, default=None, help="default: a temp folder")
    args = parser.parse_args()
    data = generate(SyntheticSpec(num_users=args.users, num_movies=args.movies, latent_dim=2))
    rng = np.random.default_rng(0)
    s, c, n, m, d = args.draws, args.chains, args.users, args.movies, args.dim

    def draw(*shape: int) -> np.ndarray:
        return rng.standard_normal((s, c, *shape), dtype=np.float32)

    samples = {
        "user_embeddings": draw(n, d),
        "user_bias": draw(n),
        "movie_embeddings": draw(m, d),
        "movie_bias": draw(m),
    }
    total = sum(a.nbytes for a in samples.values())
    store = args.store or Path(tempfile.mkdtemp(prefix="shardlens-bench-"))
    try:
        t0 = time.perf_counter()
        version = publish_posterior(store, samples=samples, data=data, config={"bench": True})
        t_publish = time.perf_counter() - t0
        del samples
        base_rss = rss_mib()
        t0 = time.perf_counter()
        post = open_posterior(store, version, verify=True)
        t_verify = time.perf_counter() - t0
        post.close()
        t0 = time.perf_counter()
        post = open_posterior(store, version, verify=False)
        t_open = time.perf_counter() - t0
        users = rng.integers(0, n, 200)
        t0 = time.perf_counter()
        for i in users:
            embedding, bias = post.user_samples(int(i))
            np.asarray(embedding).sum() + np.asarray(bias).sum()
        t_user = (time.perf_counter() - t0) / len(users)
        rss_open = {k: v - base_rss[k] for k, v in rss_mib().items()}
        print(
            f"samples: {s}x{c} draws x chains, {n} users, {m} movies, D={d}: {total / 2**20:.0f} MiB"
        )
        print(f"publish (write + fsync + sha256):  {t_publish:7.2f} s")
        print(f"open, verify=True (sha256 all):    {t_verify:7.2f} s")
        print(f"open, verify=False (sizes only):   {t_open * 1e3:7.1f} ms")
        print(f"user_samples(i) read, per user:    {t_user * 1e6:7.1f} us")
        print(
            f"resident after open + 200 users:   +{rss_open['RssAnon']:.0f} MiB private, "
            f"+{rss_open['RssFile']:.0f} MiB mapped page cache (shared, reclaimable)"
        )
    finally:
        if args.store is None:
            shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
