"""The one place that builds the per-device HMC kernel for a `TrainConfig`.

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

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from tensorflow_probability.substrates import jax as tfp

from training.config import ConfigError, TrainConfig
from training.hmc.adaptation import AdaptationOptions, AdaptiveHMC
from training.hmc.fast_kernel import FastHamiltonianMonteCarlo
from training.hmc.fast_target import make_fast_target
from training.hmc.model import make_model
from training.names import AXIS

__all__ = ["adaptation_options", "build_kernel", "momentum_distribution"]

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


def _inner_factory(config: TrainConfig, watch: jax.Array, user_mask: jax.Array):
    local_users, num_movies = watch.shape
    if config.likelihood == "fast":
        # Built once per compiled segment; each iteration only wraps it in a new kernel.
        target = make_fast_target(
            watch,
            user_mask,
            prior_scale=config.prior_scale,
            axis_name=AXIS,
            reduction=config.reduction,
        )

        def make_fast(step_size, num_leapfrog_steps, inverse_mass_matrix):
            return FastHamiltonianMonteCarlo(
                target,
                step_size=step_size,
                num_leapfrog_steps=num_leapfrog_steps,
                num_chains=config.num_chains,
                inverse_mass_matrix=inverse_mass_matrix,
            )

        return make_fast
    if config.likelihood == "reference":
        model = make_model(
            num_movies=num_movies,
            latent_dim=config.latent_dim,
            prior_scale=config.prior_scale,
            user_mask=user_mask,
        )
        observed = watch.astype(jnp.float32)

        def target_log_prob(*state):
            return model.log_prob((*state, observed))

        def make_reference(step_size, num_leapfrog_steps, inverse_mass_matrix):
            return tfem.PreconditionedHamiltonianMonteCarlo(
                target_log_prob,
                step_size,
                num_leapfrog_steps,
                momentum_distribution=momentum_distribution(
                    num_chains=config.num_chains,
                    local_users=local_users,
                    num_movies=num_movies,
                    latent_dim=config.latent_dim,
                    inverse_mass_matrix=inverse_mass_matrix,
                ),
            )

        return make_reference
    raise ConfigError(f"unknown likelihood {config.likelihood!r}")


def build_kernel(config: TrainConfig, *, watch: jax.Array, user_mask: jax.Array) -> AdaptiveHMC:
    """The adaptive kernel for this device's watch rows [n, M] and user mask [n]; call it
    inside the device map. The inner HMC flavour is ``config.likelihood``."""
    return AdaptiveHMC(
        _inner_factory(config, watch, user_mask),
        adaptation_options(config),
        user_mask=user_mask,
        axis_name=AXIS,
    )


def adaptation_options(config: TrainConfig) -> AdaptationOptions:
    """The adaptation settings of a training config."""
    return AdaptationOptions(
        initial_step_size=float(np.float32(config.step_size)),
        num_leapfrog_steps=config.num_leapfrog_steps,
        num_adaptation_steps=config.num_adaptation_steps,
        mass_matrix=config.mass_matrix,
        trajectory=config.trajectory,
        step_size_jitter=config.step_size_jitter,
        target_accept_prob=config.target_accept_prob,
        windows=(config.adapt_init_buffer, config.adapt_window, config.adapt_term_buffer),
        max_leapfrog_steps=config.max_leapfrog_steps,
        reduction=config.reduction,
    )
