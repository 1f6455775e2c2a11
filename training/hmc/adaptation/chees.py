"""ChEES trajectory-length adaptation (Hoffman, Radul & Sountsov 2021, AISTATS).

The same criterion and update as TFP's ``GradientBasedTrajectoryLengthAdaptation`` with its
defaults, written as pure functions for kernels that run inside ``shard_map``:

- each iteration runs a trajectory of length ``T * h``, where ``h`` in (0, 1] is the Halton
  (base 2) sequence at the iteration, so L = ceil(T h / step size) leapfrog steps (at least
  1, at most ``max_leapfrog_steps``), shared by every chain and device;
- ChEES per chain is 1/4 (|x' - E x'|^2 - |x - E x|^2)^2 over all coordinates (x the
  previous state, x' the proposal, means across chains, the proposal's weighted by
  acceptance); its derivative in the trajectory length is Delta * (x' - E x') . v', with v'
  the proposal's velocity (M^-1 p');
- the acceptance-weighted mean over chains of that derivative times h drives an Adam-style
  update (RMSProp, beta1 = 0) of log T, each step clipped to +-0.35; T stays at most
  ``step size * max_leapfrog_steps``;
- after adaptation, T is a running geometric average with weights t^-1/2.

The sums over the users' coordinates span every device (``device_sum``); padded users are
masked out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "CheesState",
    "chees_adapt",
    "chees_gradient",
    "chees_init",
    "chees_leapfrog_steps",
    "chees_update",
    "halton",
]

HALTON_BITS = 10  # TFP: up to 1024 distinct trajectory lengths
ADAPTATION_RATE = 0.025  # TFP's default learning rate on log T
SQ_GRAD_RATE = 0.05  # 1 - beta2 of the running mean squared gradient
MAX_LOG_UPDATE = 0.35  # TFP clips each log T step to this


class CheesState(NamedTuple):
    """float32 scalars: the trajectory length being adapted, its running average (used
    after adaptation) and the running mean of squared criterion gradients."""

    trajectory_length: jax.Array
    averaged_trajectory_length: jax.Array
    averaged_sq_grad: jax.Array


def chees_init(step_size: float, num_leapfrog_steps: int) -> CheesState:
    """Start from the configured trajectory, step size x leapfrog steps (as TFP does)."""
    zero = jnp.zeros((), jnp.float32)
    return CheesState(jnp.float32(step_size * num_leapfrog_steps), zero, zero)


def halton(iteration: jax.Array) -> jax.Array:
    """Base-2 Halton (van der Corput) value in (0, 1) of ``iteration + 1`` (TFP's)."""
    i = jnp.asarray(iteration, jnp.float32)
    masks = 2.0 ** jnp.arange(HALTON_BITS, dtype=jnp.float32)
    return jnp.sum(jnp.mod(jnp.floor((i + 1.0) / masks), 2.0) * (0.5 / masks))


def chees_leapfrog_steps(
    state: CheesState,
    iteration: jax.Array,
    step_size: jax.Array,
    *,
    adapting: jax.Array,
    jitter_amount: float,
    max_leapfrog_steps: int,
) -> tuple[jax.Array, jax.Array]:
    """(leapfrog steps int32, trajectory jitter h) for this iteration."""
    jitter = halton(iteration) * jitter_amount + (1.0 - jitter_amount)
    length = jnp.where(adapting, state.trajectory_length, state.averaged_trajectory_length)
    steps = jnp.ceil(length * jitter / step_size)
    steps = jnp.clip(jnp.nan_to_num(steps, nan=1.0), 1.0, float(max_leapfrog_steps))
    return steps.astype(jnp.int32), jitter


def _weighted_chain_mean(x: jax.Array, weights: jax.Array | None) -> jax.Array:
    if weights is None:
        return jnp.mean(x, axis=0)
    w = weights.reshape(weights.shape + (1,) * (x.ndim - 1))
    safe = jnp.where(jnp.isfinite(x), x, 0.0)
    return jnp.sum(w * safe, axis=0) / (jnp.sum(weights) + 1e-20)


def chees_gradient(
    previous: Sequence[jax.Array],
    proposed: Sequence[jax.Array],
    velocity: Sequence[jax.Array],
    accept_prob: jax.Array,
    *,
    user_mask: jax.Array,
    device_sum: Callable[[jax.Array], jax.Array],
) -> tuple[jax.Array, jax.Array]:
    """(ChEES, d ChEES / d trajectory length) per chain, [C] each.

    State parts are (U, u, V, v) with a leading chain axis; U, u hold this device's users
    (``user_mask`` False for padding) and are summed over devices with ``device_sum``.
    """
    sums = []  # per part: [2, C] = (|x' - E x'|^2 - |x - E x|^2, (x' - E x') . v')
    for part, (x, x_new, v) in enumerate(zip(previous, proposed, velocity, strict=True)):
        centered = x - _weighted_chain_mean(x, None)
        centered_new = x_new - _weighted_chain_mean(x_new, accept_prob)
        if part < 2:  # user parts: padded users count for nothing
            keep = user_mask[: x.shape[1]].reshape((1, x.shape[1]) + (1,) * (x.ndim - 2))
            centered = jnp.where(keep, centered, 0.0)
            centered_new = jnp.where(keep, centered_new, 0.0)
        axes = tuple(range(1, x.ndim))
        sums.append(
            jnp.stack(
                [
                    jnp.sum(jnp.square(centered_new) - jnp.square(centered), axis=axes),
                    jnp.sum(centered_new * v, axis=axes),
                ]
            )
        )
    users = device_sum(sums[0] + sums[1])
    total = users + sums[2] + sums[3]
    delta, drift = total[0], total[1]
    return 0.25 * jnp.square(delta), delta * drift


def chees_adapt(
    state: CheesState,
    *,
    previous: Sequence[jax.Array],
    proposed: Sequence[jax.Array],
    final_momentum: Sequence[jax.Array],
    inverse_mass_matrix: Sequence[jax.Array] | None,
    accept_prob: jax.Array,
    jitter: jax.Array,
    step_size: jax.Array,
    iteration: jax.Array,
    max_leapfrog_steps: int,
    user_mask: jax.Array,
    device_sum: Callable[[jax.Array], jax.Array],
) -> CheesState:
    """One adaptation step from an HMC transition: the proposal's velocity is
    M^-1 p' (``inverse_mass_matrix`` None: the identity), the rest as in
    `chees_gradient` and `chees_update`."""
    velocity = (
        list(final_momentum)
        if inverse_mass_matrix is None
        else [p * m for p, m in zip(final_momentum, inverse_mass_matrix, strict=True)]
    )
    _, gradient = chees_gradient(
        previous, proposed, velocity, accept_prob, user_mask=user_mask, device_sum=device_sum
    )
    return chees_update(
        state,
        gradient,
        accept_prob,
        jitter=jitter,
        step_size=step_size,
        iteration=iteration,
        max_leapfrog_steps=max_leapfrog_steps,
    )


def chees_update(
    state: CheesState,
    gradient: jax.Array,
    accept_prob: jax.Array,
    *,
    jitter: jax.Array,
    step_size: jax.Array,
    iteration: jax.Array,
    max_leapfrog_steps: int,
) -> CheesState:
    """One Adam (beta1 = 0) step on log T from the per-chain ``gradient`` [C]."""
    grad = gradient * jitter
    grad = jnp.where((accept_prob > 1e-4) & jnp.isfinite(grad), grad, 0.0)
    grad = jnp.sum(grad * accept_prob) / jnp.sum(accept_prob + 1e-20)
    t = jnp.asarray(iteration, jnp.float32) + 1.0
    sq = (1.0 - SQ_GRAD_RATE) * state.averaged_sq_grad + SQ_GRAD_RATE * jnp.square(grad)
    corrected = sq / (1.0 - (1.0 - SQ_GRAD_RATE) ** t)
    rate = ADAPTATION_RATE / jnp.sqrt(corrected + 1e-20)
    log_update = jnp.clip(rate * grad, -MAX_LOG_UPDATE, MAX_LOG_UPDATE)
    length = state.trajectory_length * jnp.exp(log_update)
    weight = t ** (-0.5)
    averaged = jnp.exp(
        weight * jnp.log(length)
        + (1.0 - weight) * jnp.log(1e-10 + state.averaged_trajectory_length)
    )
    length = jnp.clip(length, 0.0, step_size * max_leapfrog_steps)
    return CheesState(length, averaged, sq)
