"""Top-K ranking metrics over every movie a user did not watch in training."""

from __future__ import annotations

import numpy as np

__all__ = [
    "METRIC_NAMES",
    "ranking_metrics",
    "top_k",
]

METRIC_NAMES = ("hr@10", "recall@20", "ndcg@10")


def top_k(scores: np.ndarray, excluded: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best-scoring movies per row, best first, skipping excluded ones."""
    masked = np.where(excluded, -np.inf, scores.astype(np.float64))
    k = min(k, masked.shape[1])
    part = np.argpartition(-masked, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(masked, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def ranking_metrics(ranked: np.ndarray, relevant: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Per-user HR@10, Recall@20 and NDCG@10 for rankings `ranked` [users, >=20].

    Recall@20 divides the hits by min(20, number held out), so a perfect ranking scores 1;
    NDCG@10 uses binary relevance and the ideal ordering of the held-out movies.
    """
    discounts = 1.0 / np.log2(np.arange(2, 12))
    hr = np.zeros(len(relevant))
    recall = np.zeros(len(relevant))
    ndcg = np.zeros(len(relevant))
    for row, truth in enumerate(relevant):
        hits = np.isin(ranked[row, :20], truth)
        top10 = hits[:10]
        hr[row] = top10.any()
        recall[row] = hits.sum() / min(20, len(truth))
        ideal = discounts[: min(10, len(truth))].sum()
        ndcg[row] = (top10 * discounts[: top10.size]).sum() / ideal
    return {"hr@10": hr, "recall@20": recall, "ndcg@10": ndcg}
