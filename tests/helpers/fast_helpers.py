"""Shared helpers for the fast-path tests: the plain TFP model, padding, meshes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from tensorflow_probability.substrates import jax as tfp

tfd = tfp.distributions
AXIS = "users"


def random_problem(*, users: int, movies: int, dim: int, chains: int, seed: int = 0):
    """A watch matrix (bool [N, M]) and a state (U, u, V, v) with a chain dimension."""
    rng = np.random.default_rng(seed)
    watch = rng.random((users, movies)) < 0.3
    shapes = [(chains, users, dim), (chains, users), (chains, movies, dim), (chains, movies)]
    state = tuple(rng.normal(size=s).astype(np.float32) for s in shapes)
    return watch, state


def reference_log_prob(watch: np.ndarray, *, prior_scale: float = 1.0):
    """The model's log density on the full (unsharded) matrix, written with TFP."""
    w = jnp.asarray(watch, jnp.float32)

    def log_prob(user_emb, user_bias, movie_emb, movie_bias):
        prior = tfd.Normal(0.0, prior_scale)
        lp = sum(
            jnp.sum(prior.log_prob(x).reshape(x.shape[0], -1), -1)
            for x in (user_emb, user_bias, movie_emb, movie_bias)
        )
        logits = (
            jnp.einsum("cnd,cmd->cnm", user_emb, movie_emb)
            + user_bias[..., :, None]
            + movie_bias[..., None, :]
        )
        return lp + tfd.Independent(tfd.Bernoulli(logits=logits), 2).log_prob(w)

    return log_prob


def user_mesh(num_devices: int) -> Mesh:
    return Mesh(np.array(jax.devices()[:num_devices]), (AXIS,))


def pad_users(watch: np.ndarray, state, num_devices: int, *, fill: float = 3.0):
    """Pad users to a multiple of ``num_devices``; padded state rows get ``fill`` (not 0)."""
    users = watch.shape[0]
    padded = -(-users // num_devices) * num_devices
    extra = padded - users
    watch_p = np.pad(watch, [(0, extra), (0, 0)]).astype(np.int8)
    mask = np.arange(padded) < users
    user_emb = np.pad(state[0], [(0, 0), (0, extra), (0, 0)], constant_values=fill)
    user_bias = np.pad(state[1], [(0, 0), (0, extra)], constant_values=fill)
    return watch_p, mask, (user_emb, user_bias, state[2], state[3])
