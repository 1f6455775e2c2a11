"""Pick entropy vs watch count: Spearman's rho with ties at their average rank."""

from __future__ import annotations

import math

import numpy as np

from training.evaluation.report import _spearman


def test_ties_take_their_average_rank():
    counts = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 3.0])  # watch counts tie often
    entropy = np.array([0.5, 0.1, 0.9, 0.3, 0.8, 0.7])
    # Pearson correlation of the average ranks, by hand.
    rx = np.array([2.0, 2.0, 2.0, 4.5, 4.5, 6.0])
    ry = np.array([3.0, 1.0, 6.0, 2.0, 5.0, 4.0])
    expected = np.corrcoef(rx, ry)[0, 1]
    assert math.isclose(_spearman(counts, entropy), expected, rel_tol=1e-12)


def test_the_order_of_tied_users_does_not_matter():
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 4, 200).astype(float)
    entropy = counts + rng.normal(0, 1, 200)
    order = rng.permutation(200)
    assert math.isclose(_spearman(counts, entropy), _spearman(counts[order], entropy[order]))


def test_constant_input_is_undefined():
    assert math.isnan(_spearman(np.ones(5), np.arange(5.0)))
    assert math.isnan(_spearman(np.ones(1), np.ones(1)))
