"""Pick counting, pick entropy, watch-probability summaries and rankings over posterior samples.

The one implementation that serving (`app/`) and the held-out evaluation
(`training/evaluation/`) share. Pure NumPy; imports nothing of ours.

The procedure follows the reference (TFP notebook "Distributed Inference with JAX"): for
every posterior sample k, movies are ranked by the logit U_k . V_kj + u_k + v_kj and the
top-ranked movie the user has not watched (and that is a candidate) is that sample's *pick*.
Counting the picks over samples gives a distribution over movies; its entropy (in bits) says
how sure the posterior is. The posterior-mean watch probability of movie j is the average
over samples of sigmoid(logit), with a central credible interval from the samples' quantiles.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = [
    "NO_PICK",
    "RANKS",
    "Rank",
    "count_picks",
    "pick_entropy_bits",
    "probability_summary",
    "quantiles",
    "rank_movies",
    "sigmoid",
    "top_unwatched",
    "user_pick_entropy_bits",
]

NO_PICK = -1  # a sample with no eligible movie (every candidate watched or excluded)
Rank = Literal["picks", "probability"]
RANKS: tuple[str, ...] = ("picks", "probability")


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, overflow-free (through tanh), in x's float dtype."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def top_unwatched(logits: np.ndarray, blocked: np.ndarray | None = None) -> np.ndarray:
    """Each row's pick: the index of the largest logit not `blocked`, [...] from [..., M].

    `blocked` (bool, broadcastable to `logits`) marks watched or non-candidate movies. Ties
    go to the lowest index (as a stable descending sort would rank them). A row whose every
    movie is blocked gets `NO_PICK`.
    """
    if blocked is None:
        return logits.argmax(axis=-1)
    masked = np.where(blocked, -np.inf, logits)
    picks = masked.argmax(axis=-1)
    none_left = np.broadcast_to(blocked, logits.shape).all(axis=-1)
    return np.where(none_left, NO_PICK, picks)


def count_picks(picks: np.ndarray, num_movies: int) -> np.ndarray:
    """How many samples picked each movie: int64 [..., M] from picks [..., K].

    `NO_PICK` entries are not counted. Leading axes (users) are kept.
    """
    picks = np.asarray(picks)
    lead = picks.shape[:-1]
    flat = picks.reshape(-1, picks.shape[-1]) if picks.ndim > 1 else picks[None]
    rows = np.broadcast_to(np.arange(flat.shape[0])[:, None], flat.shape)
    valid = flat >= 0
    index = rows[valid].astype(np.int64) * num_movies + flat[valid]
    counts = np.bincount(index, minlength=flat.shape[0] * num_movies)
    return counts.reshape(*lead, num_movies) if picks.ndim > 1 else counts


def pick_entropy_bits(counts: np.ndarray) -> np.ndarray:
    """Entropy in bits of each row's pick distribution, float64 [...] from counts [..., M].

    A row without any pick (no candidate left) has no distribution: its entropy is NaN
    (the API reports it as null), not 0 (which would claim certainty).
    """
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = counts / total
        terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    entropy = terms.sum(axis=-1) + 0.0  # + 0.0: no negative zero
    return np.where(total[..., 0] > 0, entropy, np.nan)


def user_pick_entropy_bits(picks: np.ndarray, *, chunk_users: int = 4096) -> np.ndarray:
    """Every user's pick entropy in bits, float64 [N], from picks [N, K] (`NO_PICK` ignored).

    The same quantity as `pick_entropy_bits(count_picks(picks, M))` row by row, without the
    [N, M] counts: each row is sorted and each run of c equal picks among n valid ones adds
    -(c / n) log2(c / n), vectorized `chunk_users` rows at a time (O(N K log K), so cheap
    for catalogues of any size). A user without any pick gets NaN, as in `pick_entropy_bits`.
    """
    num_users = picks.shape[0]
    out = np.full(num_users, np.nan)
    for start in range(0, num_users, chunk_users):
        rows = np.sort(np.asarray(picks[start : start + chunk_users], dtype=np.int64), axis=1)
        if rows.size == 0:
            continue
        new_run = np.ones(rows.shape, dtype=bool)
        new_run[:, 1:] = rows[:, 1:] != rows[:, :-1]
        run_id = np.cumsum(new_run.ravel()) - 1
        run_len = np.bincount(run_id)[run_id].reshape(rows.shape).astype(np.float64)
        valid = rows >= 0
        n = valid.sum(axis=1).astype(np.float64)
        safe_n = np.maximum(n, 1.0)[:, None]
        terms = np.where(valid, np.log2(run_len / safe_n), 0.0)
        entropy = -(terms.sum(axis=1) / safe_n[:, 0]) + 0.0  # + 0.0: no negative zero
        out[start : start + rows.shape[0]] = np.where(n > 0, entropy, np.nan)
    return out


def quantiles(values: np.ndarray, qs: tuple[float, ...]) -> list[np.ndarray]:
    """`np.quantile(values, q, axis=-1)` (linear method) for each q, via one partition."""
    n = values.shape[-1]
    positions = [q * (n - 1) for q in qs]
    bounds = [(int(np.floor(p)), min(int(np.floor(p)) + 1, n - 1)) for p in positions]
    ordered = np.partition(values, sorted({i for pair in bounds for i in pair}), axis=-1)
    return [
        ordered[..., lo] + (ordered[..., hi] - ordered[..., lo]) * (p - lo)
        for p, (lo, hi) in zip(positions, bounds, strict=True)
    ]


def probability_summary(
    logits: np.ndarray, *, interval: float = 0.90
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior mean and central `interval` credible interval of sigmoid(logits).

    logits: [..., K] over samples. Returns (mean, low, high), float64 [...]: the mean over
    samples and the (1 - interval)/2 and (1 + interval)/2 sample quantiles.
    """
    if not 0.0 < interval < 1.0:
        raise ValueError(f"interval must be in (0, 1), got {interval}")
    probs = sigmoid(np.asarray(logits, dtype=np.float64))
    if probs.shape[-1] == 0 or probs.size == 0:
        empty = np.zeros(probs.shape[:-1])
        return empty, empty.copy(), empty.copy()
    tail = (1.0 - interval) / 2.0
    low, high = quantiles(probs, (tail, 1.0 - tail))
    return probs.mean(axis=-1), low, high


def rank_movies(
    candidates: np.ndarray,
    *,
    counts: np.ndarray,
    mean_probability: np.ndarray,
    rank: Rank,
    k: int,
) -> np.ndarray:
    """The first `k` candidate movies in ranking order (int64 indices, fewer if fewer).

    candidates: bool [M] (unwatched, not excluded, in the genre filter); counts: [M] pick
    counts; mean_probability: [M] posterior-mean watch probabilities.
    - `rank="picks"`: by pick count, then (movies no sample picked included) by mean
      probability, then by index.
    - `rank="probability"`: by mean probability, then by index.
    """
    if rank not in RANKS:
        raise ValueError(f"rank must be one of {RANKS}, got {rank!r}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    index = np.flatnonzero(candidates)
    prob = np.asarray(mean_probability)
    if rank == "probability":
        return _top_by_probability(index, prob, k)
    picked = index[np.asarray(counts)[index] > 0]  # few: sort them all
    order = picked[np.lexsort((picked, -prob[picked], -np.asarray(counts)[picked]))][:k]
    if order.size == k:
        return order.astype(np.int64)
    unpicked = index[np.asarray(counts)[index] == 0]
    return np.concatenate([order, _top_by_probability(unpicked, prob, k - order.size)]).astype(
        np.int64
    )


def _top_by_probability(index: np.ndarray, prob: np.ndarray, k: int) -> np.ndarray:
    """The first `k` of `index` by descending `prob[index]`, ties by index."""
    if k <= 0 or index.size == 0:
        return np.empty(0, dtype=np.int64)
    values = -prob[index]
    if k < index.size:  # a partial selection first; keep every tie of the k-th value
        cut = np.partition(values, k - 1)[k - 1]
        keep = values <= cut
        index, values = index[keep], values[keep]
    return index[np.lexsort((index, values))][:k].astype(np.int64)
