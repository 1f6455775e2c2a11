"""The Bayesian matrix factorization model (REFERENCE.md example 2) as a sharded TFP joint.

U ~ N(0, s^2) [N, D], u ~ N(0, s^2) [N], V ~ N(0, s^2) [M, D], v ~ N(0, s^2) [M],
W_ij ~ Bernoulli(sigmoid(U_i . V_j + u_i + v_j)).

Inside a device map over the mesh axis `users`, every device holds a block of users:
U, u and W are `tfed.Sharded` along that axis, V and v are replicated. When the user count
does not divide evenly, the user axis is padded with zero rows; a per-user mask removes the
padded users' prior and likelihood terms (so their gradients are exactly zero).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tensorflow_probability.substrates import jax as tfp

from training.names import AXIS

__all__ = [
    "ChainState",
    "logits",
    "make_model",
    "make_prior",
    "unsharded_log_density",
]

Distribution = Any  # a TFP distribution (TFP's JAX substrate has no usable type stubs)

tfd = tfp.distributions
tfed = tfp.experimental.distribute
Root = tfed.JointDistributionCoroutine.Root


class ChainState(NamedTuple):
    """The chain state; leading dims are [chains]. U and u hold this device's user block."""

    user_embeddings: jax.Array
    user_bias: jax.Array
    movie_embeddings: jax.Array
    movie_bias: jax.Array


def _zero(_dist: Distribution) -> float:
    """Safe value for masked-out positions (cheap, unlike the default fixed sample)."""
    return 0.0


def _masked(dist: Distribution, mask: jax.Array, event_ndims: int) -> Distribution:
    return tfd.Independent(
        tfd.Masked(dist, mask, safe_sample_fn=_zero), reinterpreted_batch_ndims=event_ndims
    )


def _prior_fn(*, local_users: int, num_movies: int, dim: int, scale: float, user_mask: jax.Array):
    sharded = functools.partial(tfed.Sharded, shard_axis_name=AXIS)
    zeros = functools.partial(jnp.zeros, dtype=jnp.float32)
    u_emb = yield Root(
        sharded(
            _masked(tfd.Normal(zeros([local_users, dim]), scale), user_mask[:, None], 2),
            name="user_embeddings",
        )
    )
    u_bias = yield Root(
        sharded(_masked(tfd.Normal(zeros([local_users]), scale), user_mask, 1), name="user_bias")
    )
    m_emb = yield Root(
        tfd.Sample(tfd.Normal(np.float32(0.0), scale), [num_movies, dim], name="movie_embeddings")
    )
    m_bias = yield Root(
        tfd.Sample(tfd.Normal(np.float32(0.0), scale), [num_movies], name="movie_bias")
    )
    return u_emb, u_bias, m_emb, m_bias


def logits(state: ChainState | tuple) -> jax.Array:
    """U V^T + u + v, [..., users, movies]."""
    u_emb, u_bias, m_emb, m_bias = state
    return (
        jnp.einsum("...nd,...md->...nm", u_emb, m_emb) + u_bias[..., :, None] + m_bias[..., None, :]
    )


def make_prior(
    *, local_users: int, num_movies: int, latent_dim: int, prior_scale: float, user_mask: jax.Array
) -> Distribution:
    """The sharded prior over (U, u, V, v); call inside a device map over `users`."""
    fn = functools.partial(
        _prior_fn,
        local_users=local_users,
        num_movies=num_movies,
        dim=latent_dim,
        scale=float(prior_scale),
        user_mask=user_mask,
    )
    return tfed.JointDistributionCoroutine(fn)


def make_model(
    *, num_movies: int, latent_dim: int, prior_scale: float, user_mask: jax.Array
) -> Distribution:
    """The sharded joint over (U, u, V, v, W) for this device's block of users.

    `user_mask` is float/bool [local_users]: 0 for padding rows. Call inside a device map.
    """
    local_users = user_mask.shape[0]
    mask = user_mask.astype(bool)
    prior_fn = functools.partial(
        _prior_fn,
        local_users=local_users,
        num_movies=num_movies,
        dim=latent_dim,
        scale=float(prior_scale),
        user_mask=mask,
    )

    def model_fn():
        state = yield from prior_fn()
        yield tfed.Sharded(
            _masked(tfd.Bernoulli(logits=logits(state)), mask[:, None], 2),
            shard_axis_name=AXIS,
            name="watch",
        )

    return tfed.JointDistributionCoroutine(model_fn)


def unsharded_log_density(
    state: ChainState | tuple, watch: jax.Array, *, prior_scale: float = 1.0
) -> jax.Array:
    """Reference log p(U, u, V, v, W) on the full, unpadded matrix, in plain JAX. [chains...]"""
    u_emb, u_bias, m_emb, m_bias = state
    scale = jnp.float32(prior_scale)

    def normal(x, ndims):
        lp = -0.5 * jnp.square(x / scale) - jnp.log(scale) - 0.5 * jnp.log(2 * jnp.pi)
        return lp.sum(axis=tuple(range(-ndims, 0)))

    z = logits(state)
    w = watch.astype(z.dtype)
    loglik = (w * z - jax.nn.softplus(z)).sum(axis=(-2, -1))
    return normal(u_emb, 2) + normal(u_bias, 1) + normal(m_emb, 2) + normal(m_bias, 1) + loglik
