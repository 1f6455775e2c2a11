"""The diagonal inverse mass matrix: Stan's regularized estimate, padding, a summary.

In HMC with momentum p ~ N(0, M), M = diag(m), the inverse mass matrix M^-1 should match
the posterior covariance; a diagonal one is each coordinate's posterior variance. Stan
(``var_adaptation::learn_variance``) shrinks the windowed sample variance of n draws toward
a small constant: (n / (n + 5)) * var + 1e-3 * (5 / (n + 5)). NumPyro and BlackJAX do the
same. Inverse mass matrices here are tuples of arrays shaped like the state parts without
the chain axis (U [n, D], u [n], V [M, D], v [M]); padded users keep 1 (their momenta are
zero in the fast kernel and move nothing in the reference one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from training.adaptation.welford import WelfordState, welford_variance

__all__ = [
    "regularized_inverse_mass",
    "summarize_inverse_mass_matrix",
    "unit_inverse_mass",
]

SHRINKAGE_DRAWS = 5.0  # Stan: weight of the prior guess, in draws
SHRINKAGE_TARGET = 1e-3  # Stan: the variance shrunk toward


def unit_inverse_mass(shapes: Sequence[tuple[int, ...]]) -> tuple[jax.Array, ...]:
    """The identity metric as per-part arrays of ones."""
    return tuple(jnp.ones(s, jnp.float32) for s in shapes)


def regularized_inverse_mass(
    estimate: WelfordState, *, user_mask: jax.Array | None = None
) -> tuple[jax.Array, ...]:
    """Stan's regularized variance of a window's draws; padded users (``user_mask`` False,
    over the leading axis of the first two parts) get 1."""
    n = estimate.num_draws
    parts = tuple(
        (n / (n + SHRINKAGE_DRAWS)) * var
        + SHRINKAGE_TARGET * (SHRINKAGE_DRAWS / (n + SHRINKAGE_DRAWS))
        for var in welford_variance(estimate)
    )
    if user_mask is None:
        return parts
    mask = user_mask[: parts[0].shape[0]]
    users = (jnp.where(mask.reshape(mask.shape + (1,) * (p.ndim - 1)), p, 1.0) for p in parts[:2])
    return (*users, *parts[2:])


def summarize_inverse_mass_matrix(
    inverse_mass_matrix: Mapping[str, np.ndarray] | None,
) -> dict[str, Any]:
    """A JSON-ready summary for diagnostics: per state part and overall, the minimum,
    median and maximum of the inverse mass matrix (the estimated posterior variances) and
    the ratio of the largest to the smallest (how unevenly scaled the posterior is, which
    an identity metric pays for in step size). ``None`` (identity metric) gives
    ``{"kind": "identity"}``.
    """
    if inverse_mass_matrix is None:
        return {"kind": "identity"}

    def stats(x: np.ndarray) -> dict[str, float | None]:
        x = np.asarray(x, np.float64).reshape(-1)
        lo, hi = float(np.min(x)), float(np.max(x))
        return {
            "min": lo,
            "median": float(np.median(x)),
            "max": hi,
            "max_over_min": hi / lo if lo > 0 else None,
        }

    parts = {name: stats(x) for name, x in inverse_mass_matrix.items()}
    everything = np.concatenate([np.asarray(x).reshape(-1) for x in inverse_mass_matrix.values()])
    return {"kind": "diagonal", **stats(everything), "parts": parts}
