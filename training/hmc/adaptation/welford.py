"""Per-coordinate running variance within each chain, pooled over chains (Welford 1962).

Each iteration adds one draw per chain: a state part [C, *shape] updates that chain's running
mean and sum of squared deviations. The variance handed to the mass matrix is the mean over
chains of each chain's own sample variance: R-hat's within-chain variance W (Gelman et al.,
"Bayesian Data Analysis", 3rd ed., section 11.4). It is not the variance of all chains' draws
together, because that adds the spread *between* chains: early in warmup the chains are still
apart, and in matrix factorization they settle in different rotations and sign flips of
(U, V), so pooled draws would overstate each coordinate's posterior variance many times over
and force a smaller step size. Stan and NumPyro adapt one metric per chain for the same reason;
here the chains share one metric (and one step size), estimated from within-chain spread.

The arithmetic is elementwise, so estimates of a user's coordinates are the same whichever
device holds the user, and estimates of replicated parts come out bit-identical on every
device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["WelfordState", "welford_init", "welford_update", "welford_variance"]


class WelfordState(NamedTuple):
    """``num_draws`` so far per chain, and per chain and coordinate ``mean`` and ``m2`` (sum
    of squared deviations from that chain's mean): one [C, *shape] array per state part."""

    num_draws: jax.Array
    mean: tuple[jax.Array, ...]
    m2: tuple[jax.Array, ...]


def welford_init(shapes: Sequence[tuple[int, ...]]) -> WelfordState:
    """An empty estimator for state parts of these shapes, chain axis first ([C, *shape])."""
    zeros = tuple(jnp.zeros(s, jnp.float32) for s in shapes)
    return WelfordState(jnp.zeros((), jnp.float32), zeros, zeros)


def welford_update(state: WelfordState, draws: Sequence[jax.Array]) -> WelfordState:
    """Add one draw per chain: ``draws`` parts are [C, *shape], like the estimator's."""
    count = state.num_draws + 1.0
    means, m2s = [], []
    for mean, m2, x in zip(state.mean, state.m2, draws, strict=True):
        delta = x - mean
        new_mean = mean + delta / count
        means.append(new_mean)
        m2s.append(m2 + delta * (x - new_mean))
    return WelfordState(count, tuple(means), tuple(m2s))


def welford_variance(state: WelfordState) -> tuple[jax.Array, ...]:
    """Within-chain variance per coordinate, [*shape] per part: the mean over chains of each
    chain's unbiased sample variance (m2 / (n - 1)); needs n >= 2 draws per chain."""
    return tuple(jnp.mean(m2, axis=0) / jnp.maximum(state.num_draws - 1.0, 1.0) for m2 in state.m2)
