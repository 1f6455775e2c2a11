"""Score a posterior on a hold-out split: ranking metrics, calibration, uncertainty."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
from scipy.stats import spearmanr

from training.data import WatchData
from training.evaluation.metrics import METRIC_NAMES, ranking_metrics, top_k
from training.evaluation.rankers import (
    RANKERS,
    pick_entropy_bits,
    point_estimate_probability,
    posterior_scores,
)
from training.evaluation.split import HoldoutSplit

__all__ = [
    "EvaluationResult",
    "evaluate_posterior",
]


class EvaluationResult(NamedTuple):
    """The JSON-ready report and the per-user arrays the plots draw."""

    report: dict[str, Any]
    watch_counts: np.ndarray  # training watches per user [users]
    pick_entropy: np.ndarray  # bits [users]
    reliability: dict[str, list[float]]  # bin mean prediction, observed rate, count


def _reliability(pred: np.ndarray, truth: np.ndarray, bins: int) -> dict[str, list[float]]:
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(pred, edges) - 1, 0, bins - 1)
    out: dict[str, list[float]] = {
        "bin_lower": [],
        "bin_upper": [],
        "mean_predicted": [],
        "observed_rate": [],
        "count": [],
    }
    for b in range(bins):
        sel = which == b
        out["bin_lower"].append(float(edges[b]))
        out["bin_upper"].append(float(edges[b + 1]))
        out["count"].append(int(sel.sum()))
        out["mean_predicted"].append(float(pred[sel].mean()) if sel.any() else float("nan"))
        out["observed_rate"].append(float(truth[sel].mean()) if sel.any() else float("nan"))
    return out


def evaluate_posterior(
    samples: Mapping[str, np.ndarray],
    split: HoldoutSplit,
    *,
    full: WatchData | None = None,
    negatives_per_positive: int = 4,
    bins: int = 10,
    seed: int = 0,
) -> EvaluationResult:
    """Compare the four rankers on `split` and measure calibration and pick uncertainty.

    Calibration pairs are every held-out watch (label 1) plus, per held-out watch,
    `negatives_per_positive` random pairs the user never watched (label 0, from `full`,
    the data before the split; default: training plus held-out watches). Users are scored
    in chunks: no [users, movies] matrix is built.
    """
    train = split.train
    num_movies = train.num_movies
    scored = split.scored_users
    popularity = train.movie_counts.astype(np.float64)
    entropy = np.zeros(train.num_users)
    rng = np.random.default_rng(seed)
    cal_pred: list[np.ndarray] = []
    cal_true: list[np.ndarray] = []
    metric_rows: dict[str, dict[str, list[np.ndarray]]] = {
        name: {m: [] for m in METRIC_NAMES} for name in RANKERS
    }
    for chunk in posterior_scores(samples, train):
        entropy[chunk.users] = pick_entropy_bits(chunk.pick_counts)
        rows = np.flatnonzero(np.isin(chunk.users, scored))
        if rows.size == 0:
            continue
        users = chunk.users[rows]
        excluded = chunk.watched[rows]
        relevant = [split.heldout(u) for u in users]
        mean_p = chunk.mean_probability[rows]
        scores = {
            "posterior_mean": mean_p,
            # Ties in pick counts (most movies are never picked) fall back to the mean.
            "pick_counts": chunk.pick_counts[rows] + mean_p,
            "point_estimate": point_estimate_probability(samples, users),
            "popularity": np.broadcast_to(popularity, excluded.shape),
        }
        for name, score in scores.items():
            values = ranking_metrics(top_k(score, excluded, 20), relevant)
            for metric in METRIC_NAMES:
                metric_rows[name][metric].append(values[metric])
        for row, user in enumerate(users):
            held = split.heldout(user)
            seen = (
                full.watched_by(user)
                if full is not None
                else np.concatenate([train.watched_by(user), held])
            )
            unwatched = np.setdiff1d(np.arange(num_movies), seen, assume_unique=True)
            negatives = rng.choice(
                unwatched,
                size=min(unwatched.size, negatives_per_positive * held.size),
                replace=False,
            )
            cal_pred.append(mean_p[row, held])
            cal_pred.append(mean_p[row, negatives])
            cal_true.append(np.ones(held.size))
            cal_true.append(np.zeros(negatives.size))
    rankers = {
        name: {
            m: float(np.concatenate(v).mean()) if v else float("nan") for m, v in metrics.items()
        }
        for name, metrics in metric_rows.items()
    }
    pred = np.concatenate(cal_pred) if cal_pred else np.zeros(0)
    truth = np.concatenate(cal_true) if cal_true else np.zeros(0)
    reliability = _reliability(pred, truth, bins)
    counts = train.watch_counts
    rank_corr = _spearman(counts.astype(float), entropy)
    report = {
        "rankers": rankers,
        "calibration": {
            "brier": float(np.mean((pred - truth) ** 2)) if pred.size else float("nan"),
            "pairs": int(pred.size),
            "positives": int(truth.sum()),
            "negatives_per_positive": negatives_per_positive,
            "reliability": reliability,
        },
        "uncertainty": {
            "spearman_entropy_vs_watch_count": rank_corr,
            "mean_entropy_bits_lightest_quartile": float(
                entropy[counts <= np.quantile(counts, 0.25)].mean()
            ),
            "mean_entropy_bits_heaviest_quartile": float(
                entropy[counts >= np.quantile(counts, 0.75)].mean()
            ),
        },
        "split": {
            "scored_users": int(scored.size),
            "heldout_watches": int(split.heldout_movies.size),
            "train_watches": int(split.train.num_watches),
        },
    }
    return EvaluationResult(report, counts, entropy, reliability)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation, ties given their average rank (`scipy.stats.spearmanr`);
    NaN when either side is constant."""
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)
