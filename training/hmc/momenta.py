"""Momenta of the fast kernel and device-count-independent draws for the user parts.

Users are split over devices, V and v are replicated. A draw for user i comes from the
step's key folded with the *global* index i (device position x local users + row), never
with the device index, so the same seed gives the same momenta, and the same initial
state, on 1, 2 or 8 devices, in one process or several: a run's samples then depend on the
device count only through the rounding of cross-device sums. Draws for V, v come from the
shared key and are identical on every device.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from training.hmc.double_float import DoubleFloat, compensated_sum, df_add, df_allsum
from training.hmc.fast_target import PartArrays

__all__ = ["draw_momentum", "kinetic_energy", "map_parts", "user_normals"]


def map_parts(f: Callable[[Any, Any], Any], a: Sequence[Any], b: Sequence[Any]) -> PartArrays:
    """Apply ``f`` part-wise to two (U, u, V, v) tuples."""
    return (f(a[0], b[0]), f(a[1], b[1]), f(a[2], b[2]), f(a[3], b[3]))


def user_normals(
    key: jax.Array,
    *,
    num_chains: int,
    local_users: int,
    event_shape: tuple[int, ...],
    axis_name: str | None,
) -> jax.Array:
    """Standard normals [C, local_users, *event_shape] for this device's users, each user's
    drawn from ``fold_in(key, global user index)``."""
    first = 0 if axis_name is None else lax.axis_index(axis_name) * local_users
    users = first + jnp.arange(local_users)

    def one(user):
        return jax.random.normal(jax.random.fold_in(key, user), (num_chains, *event_shape))

    return jnp.moveaxis(jax.vmap(one)(users), 0, 1)


def draw_momentum(
    seed: jax.Array,
    state: Sequence[jax.Array],
    user_mask: jax.Array,
    *,
    axis_name: str | None,
    inverse_mass_matrix: Sequence[jax.Array] | None = None,
) -> PartArrays:
    """Momenta ~ N(0, M) for (U, u, V, v): per user for U, u (zero for padded users),
    shared for V, v. M is the identity, or diag(1 / ``inverse_mass_matrix``) given per part
    without the chain axis."""
    k_user_emb, k_user_bias, k_movie_emb, k_movie_bias = jax.random.split(seed, 4)
    user_emb, _, movie_emb, movie_bias = state
    chains, n, d = user_emb.shape
    mask = user_mask[:n]
    draw = functools.partial(user_normals, num_chains=chains, local_users=n, axis_name=axis_name)
    p = (
        jnp.where(mask[:, None], draw(k_user_emb, event_shape=(d,)), 0.0),
        jnp.where(mask, draw(k_user_bias, event_shape=()), 0.0),
        jax.random.normal(k_movie_emb, movie_emb.shape),
        jax.random.normal(k_movie_bias, movie_bias.shape),
    )
    if inverse_mass_matrix is None:
        return p
    return map_parts(lambda pi, im: pi * lax.rsqrt(im), p, tuple(inverse_mass_matrix))


def kinetic_energy(
    momentum: Sequence[jax.Array],
    *,
    axis_name: str | None,
    inverse_mass_matrix: Sequence[jax.Array] | None = None,
) -> DoubleFloat:
    """p^T M^-1 p / 2 per chain over all devices as a (hi, lo) pair [C]."""
    if inverse_mass_matrix is not None:  # p_i^2 / m_i = (p_i * sqrt(m_i^-1))^2
        momentum = map_parts(
            lambda pi, im: pi * jnp.sqrt(im), tuple(momentum), tuple(inverse_mass_matrix)
        )
    p_user_emb, p_user_bias, p_movie_emb, p_movie_bias = momentum
    users = compensated_sum(jnp.sum(p_user_emb**2, -1) + p_user_bias**2, axis=-1)
    movies = compensated_sum(jnp.sum(p_movie_emb**2, -1) + p_movie_bias**2, axis=-1)
    total = df_add(df_allsum(users, axis_name), movies)
    return DoubleFloat(0.5 * total.hi, 0.5 * total.lo)
