"""Score every (user, movie) pair with the rankers the evaluation compares.

All rankers read posterior samples in the reference shapes (draws, chains, ...) and
work in chunks of users, so memory stays bounded at full MovieLens size.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import NamedTuple

import numpy as np

from common.picks import count_picks, sigmoid, top_unwatched
from common.picks import pick_entropy_bits as _entropy
from training.data import WatchData

RANKERS = ("posterior_mean", "pick_counts", "point_estimate", "popularity")


class PosteriorScores(NamedTuple):
    """Per-user quantities for a chunk of users, [users, movies] unless noted."""

    users: np.ndarray  # factorized user indices of the chunk
    watched: np.ndarray  # the chunk's rows of the training watch matrix (bool)
    mean_probability: np.ndarray  # posterior mean of sigmoid(logits)
    pick_counts: np.ndarray  # how often each movie is the top unwatched pick (int32)


def _flatten(samples: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Merge the (draws, chains) axes into one sample axis."""
    u = np.asarray(samples["user_embeddings"])
    k, d = u.shape[0] * u.shape[1], u.shape[-1]
    return (
        u.reshape(k, -1, d),
        np.asarray(samples["user_bias"]).reshape(k, -1),
        np.asarray(samples["movie_embeddings"]).reshape(k, -1, d),
        np.asarray(samples["movie_bias"]).reshape(k, -1),
    )


def posterior_scores(
    samples: Mapping[str, np.ndarray],
    watched: WatchData,
    *,
    chunk_users: int = 256,
    chunk_samples: int = 16,
) -> Iterator[PosteriorScores]:
    """Yield mean watch probabilities and top-1 unwatched pick counts, a user chunk at a time.

    `watched` is the training data: its watched movies are never picked, as in the
    reference's recommendation procedure. Only one chunk's rows of the watch matrix are
    ever dense ([chunk_users, movies]).
    """
    big_u, small_u, big_v, small_v = _flatten(samples)
    num_samples, num_users = small_u.shape
    num_movies = small_v.shape[1]
    for lo in range(0, num_users, chunk_users):
        users = np.arange(lo, min(num_users, lo + chunk_users))
        mean = np.zeros((users.size, num_movies), np.float64)
        counts = np.zeros((users.size, num_movies), np.int32)
        chunk_watched = watched.rows(lo, lo + users.size)
        blocked = chunk_watched[None]
        for k0 in range(0, num_samples, chunk_samples):
            ks = slice(k0, min(num_samples, k0 + chunk_samples))
            logits = np.einsum("knd,kmd->knm", big_u[ks, users], big_v[ks], optimize=True)
            logits += small_u[ks, users][:, :, None] + small_v[ks][:, None, :]
            mean += sigmoid(logits).sum(axis=0)
            # The serving path's pick rule and counting (`common.picks`), per sample.
            counts += count_picks(top_unwatched(logits, blocked).transpose(1, 0), num_movies)
        yield PosteriorScores(users, chunk_watched, (mean / num_samples).astype(np.float32), counts)


def point_estimate_probability(samples: Mapping[str, np.ndarray], users: np.ndarray) -> np.ndarray:
    """sigmoid of the logits at the posterior-mean embeddings and biases, [users, movies]."""
    axes = (0, 1)
    u = np.asarray(samples["user_embeddings"]).mean(axis=axes)[users]
    b = np.asarray(samples["user_bias"]).mean(axis=axes)[users]
    v = np.asarray(samples["movie_embeddings"]).mean(axis=axes)
    c = np.asarray(samples["movie_bias"]).mean(axis=axes)
    return sigmoid(u @ v.T + b[:, None] + c[None, :])


def pick_entropy_bits(counts: np.ndarray) -> np.ndarray:
    """Entropy in bits of each row's pick distribution (`common.picks.pick_entropy_bits`);
    a user with no pick at all (every movie watched) counts as 0 bits here, so per-user
    summaries stay defined."""
    return np.nan_to_num(_entropy(counts), nan=0.0)
