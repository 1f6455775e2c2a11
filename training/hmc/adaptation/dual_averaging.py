"""Nesterov dual averaging of log step size (Hoffman & Gelman 2014, Algorithm 5; Stan).

The same recursion as Stan's ``stepsize_adaptation::learn_stepsize`` and BlackJAX's
``dual_averaging_adaptation``, with Stan's constants (gamma 0.05, t0 10, kappa 0.75) and the
shrinkage target mu = log(10 * initial step size). Pure functions over a NamedTuple of
float32 scalars, so the state can live in kernel results and checkpoints.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["DualAveragingState", "da_final_step_size", "da_init", "da_update"]

GAMMA = 0.05  # regularization scale
T0 = 10.0  # iteration offset: damps the first iterations
KAPPA = 0.75  # decay of the averaging weights


class DualAveragingState(NamedTuple):
    """``log_step``: the current iterate; ``log_averaged_step``: its weighted average (used
    once adaptation ends); ``error_mean``: the averaged (target - acceptance)."""

    log_step: jax.Array
    log_averaged_step: jax.Array
    error_mean: jax.Array
    num_updates: jax.Array
    mu: jax.Array


def da_init(step_size: jax.Array | float) -> DualAveragingState:
    """A fresh (or restarted) state around ``step_size`` (> 0)."""
    log_step = jnp.log(jnp.asarray(step_size, jnp.float32))
    zero = jnp.zeros((), jnp.float32)
    return DualAveragingState(
        log_step=log_step,
        log_averaged_step=zero,
        error_mean=zero,
        num_updates=zero,
        mu=jnp.log(jnp.float32(10.0)) + log_step,
    )


def da_update(
    state: DualAveragingState, accept_prob: jax.Array, *, target: float
) -> DualAveragingState:
    """One step with the observed mean acceptance probability in [0, 1]."""
    accept_prob = jnp.clip(jnp.nan_to_num(accept_prob, nan=0.0), 0.0, 1.0)
    count = state.num_updates + 1.0
    eta = 1.0 / (count + T0)
    error_mean = (1.0 - eta) * state.error_mean + eta * (target - accept_prob)
    log_step = state.mu - error_mean * jnp.sqrt(count) / GAMMA
    weight = count ** (-KAPPA)
    log_averaged_step = (1.0 - weight) * state.log_averaged_step + weight * log_step
    return DualAveragingState(log_step, log_averaged_step, error_mean, count, state.mu)


def da_final_step_size(state: DualAveragingState) -> jax.Array:
    """The step size to keep after adaptation: exp(averaged iterate), or the restart
    value when no update happened since the last (re)start."""
    return jnp.exp(jnp.where(state.num_updates > 0, state.log_averaged_step, state.log_step))
