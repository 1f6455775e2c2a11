"""The one place that builds the per-device HMC kernel from its `KernelParams`.

Both samplers run inside `jax.shard_map` under `training.hmc.adaptation.AdaptiveHMC` (step
size, diagonal mass matrix, trajectory length); only the inner kernel differs:
- "fast": `training.hmc.fast_kernel.FastHamiltonianMonteCarlo` (hand-written likelihood and
  gradient, gradient-only inner leapfrog steps);
- "reference": TFP's `PreconditionedHamiltonianMonteCarlo` on the sharded model's
  log_prob, whose momentum distribution is the mass matrix: Sharded Normals for U, u (each
  device draws its users' momenta) and Normals for V, v (identical on every device), with
  scales 1 / sqrt(inverse mass matrix).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from tensorflow_probability.substrates import jax as tfp

from training.config import ConfigError
from training.hmc.adaptation import AdaptationOptions, AdaptiveHMC
from training.hmc.fast_kernel import FastHamiltonianMonteCarlo
from training.hmc.fast_target import make_fast_target
from training.hmc.model import make_model
from training.names import AXIS

__all__ = ["KernelParams", "build_kernel", "log_prob_gradient", "momentum_distribution"]

tfd = tfp.distributions
tfed = tfp.experimental.distribute
tfem = tfp.experimental.mcmc


def momentum_distribution(
    *,
    num_chains: int,
    local_users: int,
    num_movies: int,
    latent_dim: int,
    inverse_mass_matrix: Sequence[jax.Array] | None = None,
) -> Any:
    """Momenta ~ N(0, M): Sharded (different per device) for U, u; replicated for V, v.

    M is the identity, or diag(1 / ``inverse_mass_matrix``) given per part without the
    chain axis (U [local_users, D], u [local_users], V [M, D], v [M]).
    """
    shapes = [
        (local_users, latent_dim),
        (local_users,),
        (num_movies, latent_dim),
        (num_movies,),
    ]
    scales: list[Any] = (
        [1.0] * 4 if inverse_mass_matrix is None else [lax.rsqrt(m) for m in inverse_mass_matrix]
    )

    def normal(shape, scale):
        loc = jnp.zeros((num_chains, *shape), jnp.float32)
        return tfd.Independent(tfd.Normal(loc, scale), len(shape))

    parts = [normal(s, scale) for s, scale in zip(shapes, scales, strict=True)]
    return tfed.JointDistributionSequential(
        [
            tfed.Sharded(parts[0], shard_axis_name=AXIS),
            tfed.Sharded(parts[1], shard_axis_name=AXIS),
            parts[2],
            parts[3],
        ]
    )


class KernelParams(NamedTuple):
    """What the per-device kernel depends on (a `TrainConfig` carries more)."""

    likelihood: str  # "fast" (hand-written target) or "reference" (the TFP model)
    num_chains: int
    latent_dim: int
    prior_scale: float
    reduction: str  # cross-device sums: "psum" or "ordered"
    adaptation: AdaptationOptions


def _fast_target(params: KernelParams, watch: jax.Array, user_mask: jax.Array) -> Any:
    return make_fast_target(
        watch,
        user_mask,
        prior_scale=params.prior_scale,
        axis_name=AXIS,
        reduction=params.reduction,
    )


def _reference_log_prob(
    params: KernelParams, watch: jax.Array, user_mask: jax.Array
) -> Callable[..., jax.Array]:
    """The TFP model's log density f(U, u, V, v) -> [C] at the observed watch rows."""
    model = make_model(
        num_movies=watch.shape[1],
        latent_dim=params.latent_dim,
        prior_scale=params.prior_scale,
        user_mask=user_mask,
    )
    observed = watch.astype(jnp.float32)

    def target_log_prob(*state: jax.Array) -> jax.Array:
        return model.log_prob((*state, observed))

    return target_log_prob


def _inner_factory(params: KernelParams, watch: jax.Array, user_mask: jax.Array):
    local_users, num_movies = watch.shape
    if params.likelihood == "fast":
        # Built once per compiled segment; each iteration only wraps it in a new kernel.
        target = _fast_target(params, watch, user_mask)

        def make_fast(step_size, num_leapfrog_steps, inverse_mass_matrix):
            return FastHamiltonianMonteCarlo(
                target,
                step_size=step_size,
                num_leapfrog_steps=num_leapfrog_steps,
                num_chains=params.num_chains,
                inverse_mass_matrix=inverse_mass_matrix,
            )

        return make_fast
    if params.likelihood == "reference":
        target_log_prob = _reference_log_prob(params, watch, user_mask)

        def make_reference(step_size, num_leapfrog_steps, inverse_mass_matrix):
            return tfem.PreconditionedHamiltonianMonteCarlo(
                target_log_prob,
                step_size,
                num_leapfrog_steps,
                momentum_distribution=momentum_distribution(
                    num_chains=params.num_chains,
                    local_users=local_users,
                    num_movies=num_movies,
                    latent_dim=params.latent_dim,
                    inverse_mass_matrix=inverse_mass_matrix,
                ),
            )

        return make_reference
    raise ConfigError(f"unknown likelihood {params.likelihood!r}")


def build_kernel(params: KernelParams, *, watch: jax.Array, user_mask: jax.Array) -> AdaptiveHMC:
    """The adaptive kernel for this device's watch rows [n, M] (int8) and user mask [n];
    call it inside the device map. The inner HMC flavour is ``params.likelihood``."""
    return AdaptiveHMC(
        _inner_factory(params, watch, user_mask),
        params.adaptation,
        user_mask=user_mask,
        axis_name=AXIS,
    )


def log_prob_gradient(
    params: KernelParams, *, watch: jax.Array, user_mask: jax.Array
) -> Callable[[Sequence[jax.Array]], tuple[jax.Array, ...]]:
    """The gradient of the log posterior summed over chains, part by part, for the sampler
    ``params.likelihood`` uses (the fast target's hand-written gradient, or autodiff of the
    TFP model); call it inside the device map (TFP's Sharded gradients are right only there).
    """
    if params.likelihood == "fast":
        target = _fast_target(params, watch, user_mask)
        return lambda state: tuple(target.grad(state))
    if params.likelihood == "reference":
        log_prob = _reference_log_prob(params, watch, user_mask)

        def total(state: tuple[jax.Array, ...]) -> jax.Array:
            return jnp.sum(log_prob(*state))

        return lambda state: tuple(jax.grad(total)(tuple(state)))
    raise ConfigError(f"unknown likelihood {params.likelihood!r}")
