"""The diagonal inverse mass matrix: Stan's regularized estimate and padding.

In HMC with momentum p ~ N(0, M), M = diag(m), the inverse mass matrix M^-1 should match
the posterior covariance; a diagonal one is each coordinate's posterior variance. Stan
(``var_adaptation::learn_variance``) shrinks the windowed sample variance of n draws toward
a small constant: (n / (n + 5)) * var + 1e-3 * (5 / (n + 5)). NumPyro and BlackJAX do the
same. Inverse mass matrices here are tuples of arrays shaped like the state parts without
the chain axis (U [n, D], u [n], V [M, D], v [M]); padded users keep 1 (their momenta are
zero in the fast kernel and move nothing in the reference one). `training.run.diagnostics.
mass_matrix_summary` summarizes an adapted one for the diagnostics.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from training.hmc.adaptation.welford import WelfordState, welford_variance

__all__ = ["regularized_inverse_mass", "unit_inverse_mass"]

SHRINKAGE_DRAWS = 5.0  # Stan: weight of the prior guess, in draws
SHRINKAGE_TARGET = 1e-3  # Stan: the variance shrunk toward


def unit_inverse_mass(shapes: Sequence[tuple[int, ...]]) -> tuple[jax.Array, ...]:
    """The identity metric as per-part arrays of ones."""
    return tuple(jnp.ones(s, jnp.float32) for s in shapes)


def regularized_inverse_mass(
    estimate: WelfordState, *, user_mask: jax.Array | None = None
) -> tuple[jax.Array, ...]:
    """Stan's regularized variance of a window's draws (``estimate``'s within-chain
    variance, shrunk with n = the window's draws over all chains); padded users (``user_mask`` False,
    over the leading axis of the first two parts) get 1."""
    n = estimate.num_draws * estimate.m2[0].shape[0]  # draws of all chains in the window
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
