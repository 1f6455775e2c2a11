"""PNG figures of an evaluation: reliability diagram, pick entropy against history."""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure

from training.evaluation.report import EvaluationResult

__all__ = [
    "entropy_png",
    "evaluation_pngs",
    "rankers_png",
    "reliability_png",
]


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _subplots(width: float, height: float):
    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot()


def reliability_png(result: EvaluationResult) -> bytes:
    rel = result.reliability
    fig, ax = _subplots(5, 5)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    mean = np.array(rel["mean_predicted"], float)
    observed = np.array(rel["observed_rate"], float)
    ok = ~np.isnan(mean)
    ax.plot(mean[ok], observed[ok], marker="o", label="posterior mean")
    brier = result.report["calibration"]["brier"]
    ax.set(
        xlabel="predicted watch probability",
        ylabel="observed rate on held-out pairs",
        title=f"Reliability (Brier {brier:.4f})",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="upper left")
    return _png(fig)


def entropy_png(result: EvaluationResult) -> bytes:
    fig, ax = _subplots(6, 4)
    ax.scatter(result.watch_counts, result.pick_entropy, s=6, alpha=0.5)
    ax.set_xscale("log")
    rho = result.report["uncertainty"]["spearman_entropy_vs_watch_count"]
    ax.set(
        xlabel="movies watched (training split, log scale)",
        ylabel="entropy of top-pick distribution (bits)",
        title=f"Pick uncertainty against history (Spearman {rho:.2f})",
    )
    return _png(fig)


def rankers_png(result: EvaluationResult) -> bytes:
    rankers = result.report["rankers"]
    names = list(rankers)
    metrics = list(next(iter(rankers.values())))
    fig, ax = _subplots(7, 4)
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        ax.bar(
            np.arange(len(metrics)) + i * width,
            [rankers[name][m] for m in metrics],
            width,
            label=name,
        )
    ax.set_xticks(np.arange(len(metrics)) + 0.4 - width / 2, metrics)
    ax.set(ylabel="score", title="Held-out ranking metrics")
    ax.legend()
    return _png(fig)


def evaluation_pngs(result: EvaluationResult) -> dict[str, bytes]:
    """All evaluation figures, keyed by the file name they are stored under."""
    return {
        "evaluation/reliability.png": reliability_png(result),
        "evaluation/entropy_vs_history.png": entropy_png(result),
        "evaluation/rankers.png": rankers_png(result),
    }
