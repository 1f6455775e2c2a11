"""A Gaussian target with the fast kernel's target interface, for adaptation tests.

State parts are shaped like the model's (U [C, n, D], u [C, n], V [C, M, D], v [C, M]),
each coordinate independent with its own mean and scale; inside ``shard_map`` the user
parts are this device's users and padded users (``user_mask`` False) contribute nothing.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from tests.helpers.fast_helpers import AXIS, user_mesh
from training.hmc.double_float import DoubleFloat, compensated_sum, df_add, df_allsum
from training.hmc.fast_kernel import FastHamiltonianMonteCarlo

STATE_SPECS = (P(None, AXIS), P(None, AXIS), P(), P())
PART_SPECS = (P(AXIS), P(AXIS), P(), P())  # per-part arrays without the chain axis


class GaussianTarget(NamedTuple):
    mean: tuple[jax.Array, ...]
    scale: tuple[jax.Array, ...]
    user_mask: jax.Array
    axis_name: str | None

    def _z(self, state):
        return [(x - m) / s for x, m, s in zip(state, self.mean, self.scale, strict=True)]

    def log_prob(self, state) -> DoubleFloat:
        z = self._z(state)
        mask = self.user_mask[: state[0].shape[1]]
        users = -0.5 * (jnp.sum(z[0] ** 2, -1) + z[1] ** 2)
        users = compensated_sum(jnp.where(mask, users, 0.0), axis=-1)
        movies = compensated_sum(-0.5 * (jnp.sum(z[2] ** 2, -1) + z[3] ** 2), axis=-1)
        return df_add(df_allsum(users, self.axis_name), movies)

    def grad(self, state):
        mask = self.user_mask[: state[0].shape[1]]
        g = [-zi / s for zi, s in zip(self._z(state), self.scale, strict=True)]
        return (
            jnp.where(mask[:, None], g[0], 0.0),
            jnp.where(mask, g[1], 0.0),
            g[2],
            g[3],
        )

    def log_prob_and_grad(self, state):
        return self.log_prob(state), self.grad(state)


def gaussian_problem(
    *, users: int, movies: int, dim: int, smallest: float, largest: float, seed: int = 0
):
    """Per-part means and scales (log-spaced from ``smallest`` to ``largest``, shuffled)."""
    rng = np.random.default_rng(seed)
    shapes = [(users, dim), (users,), (movies, dim), (movies,)]
    sizes = [int(np.prod(s)) for s in shapes]
    scales = np.exp(np.linspace(np.log(smallest), np.log(largest), sum(sizes)))
    rng.shuffle(scales)
    parts = np.split(scales.astype(np.float32), np.cumsum(sizes)[:-1])
    scale = tuple(p.reshape(s) for p, s in zip(parts, shapes, strict=True))
    mean = tuple(
        (rng.normal(size=s) * sc).astype(np.float32) for s, sc in zip(shapes, scale, strict=True)
    )
    return mean, scale


def pad(x: np.ndarray, rows: int, fill: float) -> np.ndarray:
    extra = rows - x.shape[0]
    return np.concatenate([x, np.full((extra, *x.shape[1:]), fill, x.dtype)])


def run_adaptive(
    mean,
    scale,
    *,
    num_devices: int | None,
    chains: int,
    iterations: int,
    seed: int,
    make_kernel: Any,
):
    """Run ``make_kernel(make_inner, user_mask, axis_name)`` (an AdaptiveHMC) for
    ``iterations`` with per-iteration seeds fold_in(key, i); ``num_devices`` None runs
    unsharded. Returns (draws [T, C, ...] per part, padding removed; final results' step
    size; inverse mass matrix parts or None; the results' num_leapfrog_steps trace)."""
    users = mean[0].shape[0]
    devices = num_devices or 1
    rows = -(-users // devices) * devices
    mask = np.arange(rows) < users
    mean_p = (pad(mean[0], rows, 0.0), pad(mean[1], rows, 0.0), mean[2], mean[3])
    scale_p = (pad(scale[0], rows, 1.0), pad(scale[1], rows, 1.0), scale[2], scale[3])
    rng = np.random.default_rng(seed)  # the same start whatever the padding
    draw = [
        (m + s * rng.normal(size=(chains, *m.shape))).astype(np.float32)
        for m, s in zip(mean, scale, strict=True)
    ]
    init = tuple(
        np.concatenate([x, np.zeros((chains, rows - users, *x.shape[2:]), np.float32)], axis=1)
        if part < 2
        else x
        for part, x in enumerate(draw)
    )
    key = jax.random.PRNGKey(seed)

    def body(mean_parts, scale_parts, user_mask, state, key, *, axis_name):
        target = GaussianTarget(tuple(mean_parts), tuple(scale_parts), user_mask, axis_name)

        def make_inner(step_size, num_leapfrog_steps, inverse_mass_matrix):
            return FastHamiltonianMonteCarlo(
                target,
                step_size=step_size,
                num_leapfrog_steps=num_leapfrog_steps,
                num_chains=chains,
                inverse_mass_matrix=inverse_mass_matrix,
            )

        kernel = make_kernel(make_inner, user_mask, axis_name)
        results = kernel.bootstrap_results(list(state))

        def step(carry, i):
            s, r = carry
            s, r = kernel.one_step(s, r, seed=jax.random.fold_in(key, i))
            return (s, r), (tuple(s), r.num_leapfrog_steps)

        (_, results), (draws, steps) = jax.lax.scan(
            step, (list(state), results), jnp.arange(iterations)
        )
        inv = results.inverse_mass_matrix
        return draws, results.step_size, (() if inv is None else tuple(inv)), steps

    args = (mean_p, scale_p, mask, init, key)
    if num_devices is None:
        out = jax.jit(functools.partial(body, axis_name=None))(*args)
    else:
        probe = jax.eval_shape(functools.partial(body, axis_name=None), *args)
        inv_specs = PART_SPECS if probe[2] else ()
        out = jax.jit(
            jax.shard_map(
                functools.partial(body, axis_name=AXIS),
                mesh=user_mesh(num_devices),
                in_specs=(PART_SPECS, PART_SPECS, P(AXIS), STATE_SPECS, P()),
                out_specs=(
                    (P(None, None, AXIS), P(None, None, AXIS), P(), P()),
                    P(),
                    inv_specs,
                    P(),
                ),
                check_vma=False,
            )
        )(*args)
    draws, step, inv, steps = out
    draws = tuple(np.asarray(x) for x in draws)
    draws = (draws[0][:, :, :users], draws[1][:, :, :users], draws[2], draws[3])
    inv = tuple(np.asarray(x) for x in inv) or None
    if inv is not None:
        inv = (inv[0][:users], inv[1][:users], inv[2], inv[3])
    return draws, float(step), inv, np.asarray(steps)
