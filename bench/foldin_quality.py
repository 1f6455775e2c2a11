"""Fold-in quality on held-out users: Recall@20 of folded-in users against the full posterior.

1. Synthetic data (default 500 users x 300 movies, D = 4) is split per user into training
   and held-out watches (`training.evaluation.holdout_split`, 20% held out).
2. The *full* posterior is fitted by HMC on every user's training watches; the hidden users'
   Recall@20 (posterior-mean ranking, training watches excluded) is the reference.
3. A second posterior is fitted without the hidden users at all. Each hidden user is then
   folded in from their training watches (`common.foldin.laplace_fold_in`, one draw per
   posterior sample, as `POST /recommend` does) and scored the same way.

Prints both Recall@20 figures (mean over hidden users), pick-count Recall@20 for both, and
the fold-in time per user.

    python bench/foldin_quality.py [--users 500] [--movies 300] [--hidden 50]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.foldin import fold_in_layout, laplace_fold_in  # noqa: E402
from common.picks import count_picks, sigmoid, top_unwatched  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.data import SyntheticSpec, WatchData, generate  # noqa: E402
from training.evaluation.metrics import ranking_metrics, top_k  # noqa: E402
from training.evaluation.split import holdout_split  # noqa: E402
from training.run.loop import train  # noqa: E402


def without_users(data: WatchData, hidden: np.ndarray) -> WatchData:
    """`data` with the `hidden` users (and their watches) removed; movies unchanged."""
    keep_user = np.ones(data.num_users, dtype=bool)
    keep_user[hidden] = False
    new_index = np.cumsum(keep_user) - 1
    keep = keep_user[data.user_index]
    return WatchData(
        source=f"{data.source} without {hidden.size} users",
        user_ids=data.user_ids[keep_user],
        movie_ids=data.movie_ids,
        titles=data.titles,
        genres=data.genres,
        user_index=new_index[data.user_index[keep]].astype(np.int32),
        movie_index=data.movie_index[keep],
    )


def fit(config: TrainConfig, data: WatchData) -> dict[str, np.ndarray]:
    started = time.perf_counter()
    result = train(config, data)
    assert result is not None
    print(f"  fitted {data.num_users} users in {time.perf_counter() - started:.0f} s")
    return {k: np.asarray(v) for k, v in result.samples.items()}


def flat(samples: dict[str, np.ndarray], name: str) -> np.ndarray:
    array = samples[name]
    return array.reshape(array.shape[0] * array.shape[1], *array.shape[2:])


def recall(scores: np.ndarray, watched: np.ndarray, heldout: list[np.ndarray]) -> float:
    return float(ranking_metrics(top_k(scores, watched, 20), heldout)["recall@20"].mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--movies", type=int, default=300)
    parser.add_argument("--hidden", type=int, default=50)
    parser.add_argument("--burnin", type=int, default=300)
    parser.add_argument("--results", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = generate(SyntheticSpec(num_users=args.users, num_movies=args.movies, seed=args.seed))
    split = holdout_split(data, fraction=0.2, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    hidden = np.sort(rng.choice(split.scored_users, args.hidden, replace=False))
    config = TrainConfig(
        data="synthetic",
        num_chains=2,
        num_leapfrog_steps=20,
        step_size=0.02,
        num_burnin_steps=args.burnin,
        num_results=args.results,
        latent_dim=4,
        segment_size=50,
        seed=args.seed,
    )
    print(f"{data.num_users} users x {data.num_movies} movies, {args.hidden} hidden users")
    train_dense = split.train.dense()
    heldout = [split.heldout(u) for u in hidden]
    watched = train_dense[hidden]

    full = fit(config, split.train)
    u, b = flat(full, "user_embeddings")[:, hidden], flat(full, "user_bias")[:, hidden]
    v, c = flat(full, "movie_embeddings"), flat(full, "movie_bias")
    logits = np.einsum("knd,kmd->knm", u, v) + b[..., None] + c[:, None, :]
    full_mean = sigmoid(logits.astype(np.float64)).mean(axis=0)
    full_counts = count_picks(top_unwatched(logits, watched[None]).T, data.num_movies)

    reduced = fit(config, without_users(split.train, hidden))
    v, c = flat(reduced, "movie_embeddings"), flat(reduced, "movie_bias")
    fold_mean = np.empty_like(full_mean)
    fold_counts = np.empty_like(full_counts)
    started = time.perf_counter()
    layout = fold_in_layout(v, c)
    for row, user in enumerate(hidden):
        fold = laplace_fold_in(
            layout, np.flatnonzero(train_dense[user]), prior_scale=config.prior_scale,
            rng=np.random.default_rng(int(user)),
        )  # fmt: skip
        z = np.einsum("kmd,kd->km", v, fold.user_embeddings) + fold.user_bias[:, None] + c
        fold_mean[row] = sigmoid(z.astype(np.float64)).mean(axis=0)
        fold_counts[row] = count_picks(top_unwatched(z, watched[row]), data.num_movies)
    per_user = (time.perf_counter() - started) / hidden.size

    print(f"Recall@20 over {hidden.size} hidden users (training watches excluded):")
    print(f"  full posterior,  posterior mean: {recall(full_mean, watched, heldout):.3f}")
    print(f"  fold-in,         posterior mean: {recall(fold_mean, watched, heldout):.3f}")
    print(
        f"  full posterior,  pick counts:    {recall(full_counts + full_mean, watched, heldout):.3f}"
    )
    print(
        f"  fold-in,         pick counts:    {recall(fold_counts + fold_mean, watched, heldout):.3f}"
    )
    print(f"fold-in: {per_user * 1e3:.1f} ms per user ({v.shape[0]} samples, {v.shape[1]} movies)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
