"""Warm start: move each chain's prior draw toward the posterior before HMC's burn-in.

Chains drawn from the prior start far from the typical set: at ml-1m's shape the embeddings
of the most-watched movies have posterior standard deviations near 0.02 against a prior
scale of 1, and HMC, whose step size is bounded by those same stiff coordinates, spends
most of a 30-minute burn-in drifting (measured: log-likelihood split R-hat 1.95 and bulk ESS
6 after 400 burn-in + 300 draws of 4 chains x 20 leapfrog steps). A few hundred steps of
Adam (Kingma & Ba 2015, `jax.example_libraries.optimizers.adam`) on the log posterior, one
gradient evaluation each, bring the stiff coordinates near their posterior region first,
the initialization that Stan's and PyMC's users reach for (optimize, then sample; Pathfinder,
Zhang et al. 2022, is the refined form). Adam's per-coordinate normalization moves every
coordinate by about the learning rate per step whatever its curvature, so a short run does
not collapse the weakly identified coordinates (light users) onto the mode: chains started
from different prior draws stay apart, which keeps R-hat meaningful.

Pure over the state: each chain is optimized on its own log density (the target is a sum
over chains, so chains do not interact), padded users have zero gradient and stay at zero,
and under `jax.shard_map` the replicated movie variables get the same all-reduced gradient,
hence the same update, on every device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.example_libraries import optimizers

__all__ = ["warm_start"]

GradientFn = Callable[[Sequence[jax.Array]], Sequence[jax.Array]]


def warm_start(
    gradient: GradientFn,
    state: Sequence[jax.Array],
    *,
    num_steps: int,
    learning_rate: float,
) -> tuple[jax.Array, ...]:
    """`num_steps` Adam steps of ascent on the log posterior from `state`.

    gradient: state parts -> the gradient of the summed-over-chains log posterior, part by
    part (same shapes as `state`: U [C, n, D], u [C, n], V [C, M, D], v [C, M]); call inside
    the device map when it all-reduces. learning_rate: Adam's step (in the parameters'
    units, about the largest move per coordinate per step). Returns the new parts (float32).
    With `num_steps` 0 it returns `state` unchanged.
    """
    if num_steps < 0 or not learning_rate > 0:
        raise ValueError(
            f"num_steps must be >= 0 and learning_rate > 0, got {num_steps}, {learning_rate}"
        )
    parts = tuple(jnp.asarray(x) for x in state)
    if num_steps == 0:
        return parts
    init, update, get_params = optimizers.adam(learning_rate)

    def body(i: Any, opt_state: optimizers.OptimizerState) -> optimizers.OptimizerState:
        grads = gradient(get_params(opt_state))
        # Adam minimizes: descend on the negative log posterior.
        return update(i, tuple(-g for g in grads), opt_state)

    opt_state = jax.lax.fori_loop(0, num_steps, body, init(parts))
    return tuple(get_params(opt_state))
