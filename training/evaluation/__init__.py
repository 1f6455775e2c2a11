"""Held-out evaluation of a posterior: split, rankers, metrics, calibration, plots."""

from training.evaluation.metrics import METRIC_NAMES, ranking_metrics, top_k
from training.evaluation.rankers import RANKERS, pick_entropy_bits, posterior_scores
from training.evaluation.report import EvaluationResult, evaluate_posterior
from training.evaluation.split import HoldoutSplit, holdout_split

__all__ = [
    "METRIC_NAMES",
    "RANKERS",
    "EvaluationResult",
    "HoldoutSplit",
    "evaluate_posterior",
    "holdout_split",
    "pick_entropy_bits",
    "posterior_scores",
    "ranking_metrics",
    "top_k",
]
