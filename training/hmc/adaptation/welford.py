"""Per-coordinate running mean and variance pooled over chains (Welford 1962; the batch
update of Chan, Golub & LeVeque 1979), as pure functions over a NamedTuple.

Each iteration adds one draw per chain: a state part [C, *shape] updates estimates of
``shape``. The arithmetic is elementwise, so estimates of a user's coordinates are the
same whichever device holds the user, and estimates of replicated parts come out
bit-identical on every device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["WelfordState", "welford_init", "welford_update", "welford_variance"]


class WelfordState(NamedTuple):
    """``num_draws`` so far (all chains), per-coordinate ``mean`` and ``m2`` (sum of
    squared deviations from the mean), one array per state part without the chain axis."""

    num_draws: jax.Array
    mean: tuple[jax.Array, ...]
    m2: tuple[jax.Array, ...]


def welford_init(shapes: Sequence[tuple[int, ...]]) -> WelfordState:
    """An empty estimator for state parts of these shapes (without the chain axis)."""
    zeros = tuple(jnp.zeros(s, jnp.float32) for s in shapes)
    return WelfordState(jnp.zeros((), jnp.float32), zeros, zeros)


def welford_update(state: WelfordState, draws: Sequence[jax.Array]) -> WelfordState:
    """Add one draw per chain: ``draws`` parts are [C, *shape]."""
    chains = draws[0].shape[0]
    count = state.num_draws + chains
    means, m2s = [], []
    for mean, m2, x in zip(state.mean, state.m2, draws, strict=True):
        batch_mean = jnp.mean(x, axis=0)
        batch_m2 = jnp.sum(jnp.square(x - batch_mean), axis=0)
        delta = batch_mean - mean
        means.append(mean + delta * (chains / count))
        m2s.append(m2 + batch_m2 + jnp.square(delta) * (state.num_draws * chains / count))
    return WelfordState(count, tuple(means), tuple(m2s))


def welford_variance(state: WelfordState) -> tuple[jax.Array, ...]:
    """Unbiased sample variance per coordinate (m2 / (n - 1)); needs n >= 2 draws."""
    return tuple(m2 / jnp.maximum(state.num_draws - 1.0, 1.0) for m2 in state.m2)
