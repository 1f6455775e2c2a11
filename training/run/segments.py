"""Sharded HMC in compiled segments: the whole sampler runs inside `jax.shard_map`.

TFP's `tfed.Sharded` distributions psum log-densities and their gradients correctly only
when the gradient is taken inside the device map, so every kernel step runs there. A
segment is one jitted, shard_mapped call that advances (state, kernel results) by
`length` iterations and returns that stretch's draws and traces. Iteration i uses the seed
`fold_in(sample_key, i)`, so splitting the run into segments (or resuming) does not change
the samples.

Device layout of what crosses the map boundary:
- chain state: U, u split along their user axis (axis 1, after chains); V, v replicated.
- kernel results: stacked per device (leading axis = device), whatever their structure,
  so checkpoints need no knowledge of which fields are sharded. They include the warmup
  adaptation's state (`training.hmc.adaptation.AdaptiveHMC`, built by `training.hmc.kernel_builder`), so
  a resumed run continues its adaptation exactly; `Program.adapted` reads the adapted
  step size, inverse mass matrix and trajectory length back out.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from training.config import ConfigError, TrainConfig
from training.data import WatchData
from training.hmc.kernel_builder import build_kernel
from training.hmc.model import make_prior
from training.hmc.momenta import user_normals
from training.names import AXIS, STATE_NAMES
from training.parallel.mesh import padded_users
from training.parallel.multihost import LayoutError, global_array, local_rows
from training.parallel.reductions import reductions

Progress = Callable[[dict[str, Any]], None]

STATE_SPECS = (P(None, AXIS), P(None, AXIS), P(), P())
SAMPLE_SPECS = (P(None, None, AXIS), P(None, None, AXIS), P(), P())
TRACE_NAMES = (
    "target_log_prob",
    "log_accept_ratio",
    "step_size",
    "log_likelihood",
    "num_leapfrog_steps",
)
_STACKED = P(AXIS)


class Problem(NamedTuple):
    """Rows [row_start, row_stop) of the watch matrix padded to a multiple of the device
    count, with their user mask: the whole matrix in a single process, this process's
    block of users in a multi-process run. The rows stay sparse (in `data`) until
    `block` builds one device's rows at a time."""

    data: WatchData
    user_mask: np.ndarray  # bool [rows]
    num_users: int
    num_movies: int
    padded_users: int
    row_start: int = 0
    row_stop: int = 0

    @property
    def shape(self) -> tuple[int, int]:
        """The global (padded) shape of the watch matrix."""
        return (self.padded_users, self.num_movies)

    def block(self, start: int, stop: int) -> np.ndarray:
        """Dense bool rows [start, stop) (inside this problem's rows); padded rows are zeros."""
        if not self.row_start <= start <= stop <= self.row_stop:
            raise ValueError(
                f"rows {start}..{stop} are outside this problem's {self.row_start}..{self.row_stop}"
            )
        return self.data.rows(start, stop)

    @property
    def watch(self) -> np.ndarray:
        """All of this problem's rows, dense (for tests and small data)."""
        return self.block(self.row_start, self.row_stop)


def prepare(data: WatchData, *, num_devices: int, rows: tuple[int, int] | None = None) -> Problem:
    """The padded problem for rows `rows` (default: all); padded rows are zeros, masked.

    Nothing is made dense here: `Segments` builds each device's block of users from the
    sparse watches when it puts them on the device.
    """
    n, m = data.num_users, data.num_movies
    if n < num_devices:
        raise ConfigError(
            f"the data has {n} users, fewer than --devices {num_devices}; use fewer devices"
        )
    n_pad = padded_users(n, num_devices)
    lo, hi = (0, n_pad) if rows is None else rows
    if not 0 <= lo <= hi <= n_pad:
        raise ValueError(f"rows {rows} outside the padded matrix of {n_pad} users")
    return Problem(
        data=data,
        user_mask=np.arange(lo, hi) < n,
        num_users=n,
        num_movies=m,
        padded_users=n_pad,
        row_start=lo,
        row_stop=hi,
    )


def initial_state(config: TrainConfig, key, user_mask, *, num_movies: int) -> tuple:
    """A draw from the prior, N(0, prior_scale^2) for every part; call inside the device map.

    Each user's values come from the key folded with the global user index, so the initial
    state does not depend on the device count; padded users start (and, with zero momentum
    and gradient, stay) at zero.
    """
    c, d, s = config.num_chains, config.latent_dim, config.prior_scale
    keys = jax.random.split(key, 4)
    n = user_mask.shape[0]
    draw = functools.partial(user_normals, num_chains=c, local_users=n, axis_name=AXIS)
    keep = user_mask.astype(jnp.float32)
    return (
        s * draw(keys[0], event_shape=(d,)) * keep[:, None],
        s * draw(keys[1], event_shape=()) * keep,
        s * jax.random.normal(keys[2], (c, num_movies, d)),
        s * jax.random.normal(keys[3], (c, num_movies)),
    )


def _keys(seed: int) -> tuple[np.ndarray, np.ndarray]:
    init_key, sample_key = jax.random.split(jax.random.PRNGKey(seed))
    # Host values: every process passes the same keys into the jitted, mesh-wide programs.
    return np.asarray(init_key), np.asarray(sample_key)


def _log_prior(config: TrainConfig, state, user_mask) -> jax.Array:
    prior = make_prior(
        local_users=user_mask.shape[0],
        num_movies=state[2].shape[-2],
        latent_dim=config.latent_dim,
        prior_scale=config.prior_scale,
        user_mask=user_mask,
    )
    return prior.log_prob(tuple(state))


def _program_key(config: TrainConfig, problem: Problem, mesh) -> tuple:
    """What a compiled program depends on: not the seed, data values or segmenting."""
    normalized = dataclasses.replace(config, seed=0, data="", segment_size=1)
    return (normalized, problem.shape, tuple(d.id for d in mesh.devices.flat))


_PROGRAMS: dict[tuple, Program] = {}


def program_for(config: TrainConfig, problem: Problem, mesh) -> Program:
    """The (cached) compiled program for this kernel, shape and mesh."""
    key = _program_key(config, problem, mesh)
    if key not in _PROGRAMS:
        _PROGRAMS[key] = Program(key[0], mesh)
    return _PROGRAMS[key]


class Program:
    """Jitted init and compiled segment functions for one kernel config, shape and mesh.

    The data, seeds and chain state are arguments, so runs that differ only in those
    (another seed, resuming, another synthetic draw of the same size) reuse the compiles.
    """

    def __init__(self, config: TrainConfig, mesh) -> None:
        self.config = config
        self.mesh = mesh
        self._compiled: dict[int, Any] = {}
        self._treedef: Any = None  # kernel-results structure, set when init is traced
        self._key_impls: dict[int, Any] = {}  # leaves that are typed PRNG keys
        self._init = jax.jit(
            jax.shard_map(
                self._init_per_device,
                mesh=mesh,
                in_specs=(P(AXIS), P(AXIS), P()),
                out_specs=(STATE_SPECS, _STACKED),
                check_vma=False,
            )
        )

    # -- per-device bodies (run inside shard_map) -------------------------------------
    def _stack(self, leaves) -> list[jax.Array]:
        """Kernel-result leaves as plain arrays with a leading device axis (keys as data)."""
        self._key_impls = {}
        out = []
        for i, x in enumerate(leaves):
            x = jnp.asarray(x)
            if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
                self._key_impls[i] = jax.random.key_impl(x)
                x = jax.random.key_data(x)
            out.append(x[None])
        return out

    def _unstack(self, stacked):
        leaves = [
            jax.random.wrap_key_data(x[0], impl=self._key_impls[i])
            if i in self._key_impls
            else x[0]
            for i, x in enumerate(stacked)
        ]
        return jax.tree.unflatten(self._treedef, leaves)

    def _init_per_device(self, watch, user_mask, key):
        config = self.config
        with jax.default_matmul_precision(config.matmul_precision):
            state = list(initial_state(config, key, user_mask, num_movies=watch.shape[1]))
            kernel = build_kernel(config, watch=watch, user_mask=user_mask)
            results = kernel.bootstrap_results(state)
        # Kernel results hold distributions whose shapes are validated on unflattening, so
        # they cross the map boundary as flat leaves; the structure is kept on the host.
        leaves, self._treedef = jax.tree.flatten(results)
        return tuple(state), self._stack(leaves)

    def _segment_per_device(self, state, stacked, watch, user_mask, key, start, *, length):
        config = self.config
        with jax.default_matmul_precision(config.matmul_precision):
            kernel = build_kernel(config, watch=watch, user_mask=user_mask)
            results = self._unstack(stacked)

            def body(carry, i):
                state, results = carry
                state, results = kernel.one_step(state, results, seed=jax.random.fold_in(key, i))
                tlp = results.inner_results.accepted_results.target_log_prob
                trace = {
                    "target_log_prob": tlp,
                    "log_accept_ratio": results.inner_results.log_accept_ratio,
                    # The adapted step size (before jitter) of the next iteration.
                    "step_size": results.step_size,
                    "log_likelihood": tlp - _log_prior(config, state, user_mask),
                    "num_leapfrog_steps": results.num_leapfrog_steps,
                }
                return (state, results), (tuple(state), trace)

            iterations = start + jnp.arange(length, dtype=jnp.int32)
            (state, results), (draws, traces) = jax.lax.scan(
                body, (list(state), results), iterations
            )
        return (
            tuple(state),
            self._stack(jax.tree.leaves(results)),
            draws,
            traces,
        )

    # -- host-side API ------------------------------------------------------------------
    def init(self, watch, user_mask, key):
        """Initial (state, stacked kernel results), drawn from the prior."""
        with reductions(self.config.reduction):
            return self._init(watch, user_mask, key)

    def _segment_fn(self, length: int):
        return jax.jit(
            jax.shard_map(
                functools.partial(self._segment_per_device, length=length),
                mesh=self.mesh,
                in_specs=(STATE_SPECS, _STACKED, P(AXIS), P(AXIS), P(), P()),
                out_specs=(STATE_SPECS, _STACKED, SAMPLE_SPECS, P()),
                check_vma=False,
            )
        )

    def is_compiled(self, length: int) -> bool:
        return length in self._compiled

    def compile(self, length: int, *args) -> float:
        """Compile the segment of `length` iterations ahead of time; returns seconds spent."""
        if length in self._compiled:
            return 0.0
        t0 = time.perf_counter()
        with reductions(self.config.reduction):
            lowered = self._segment_fn(length).lower(*args)
        self._compiled[length] = lowered.compile()
        return time.perf_counter() - t0

    def memory_analysis(self, length: int) -> dict[str, int] | None:
        """XLA's per-device bytes of the compiled segment of `length` (None when unknown)."""
        compiled = self._compiled.get(length)
        analysis = compiled.memory_analysis() if compiled is not None else None
        if analysis is None:
            return None
        return {
            "arguments": int(analysis.argument_size_in_bytes),
            "outputs": int(analysis.output_size_in_bytes),
            "temporaries": int(analysis.temp_size_in_bytes),
            "aliased": int(analysis.alias_size_in_bytes),
        }

    def run(self, length: int, *args):
        """Advance by `length` iterations: args = (state, results, watch, mask, key, start)."""
        self.compile(length, *args)
        return self._compiled[length](*args)

    def _adapted_per_device(self, stacked):
        results = self._unstack(stacked)
        out: dict[str, Any] = {"step_size": results.step_size}
        if results.inverse_mass_matrix is not None:
            out["inverse_mass_matrix"] = tuple(results.inverse_mass_matrix)
        if results.trajectory is not None:
            done = results.iteration >= self.config.num_adaptation_steps
            traj = results.trajectory
            out["trajectory_length"] = jnp.where(
                done, traj.averaged_trajectory_length, traj.trajectory_length
            )
        return out

    def adapted(self, stacked) -> dict[str, Any]:
        """The adaptation's current values as global arrays: ``step_size`` (before jitter),
        ``inverse_mass_matrix`` (U [padded users, D], u, V [M, D], v; absent for the
        identity metric) and ``trajectory_length`` (ChEES only)."""
        specs: dict[str, Any] = {"step_size": P()}
        if self.config.mass_matrix == "diagonal":
            specs["inverse_mass_matrix"] = (P(AXIS), P(AXIS), P(), P())
        if self.config.trajectory == "chees":
            specs["trajectory_length"] = P()
        fn = jax.jit(
            jax.shard_map(
                self._adapted_per_device,
                mesh=self.mesh,
                in_specs=(_STACKED,),
                out_specs=specs,
                check_vma=False,
            )
        )
        return fn(stacked)

    def expected_results(self, watch, user_mask, key) -> list:
        """Shapes and dtypes of the stacked kernel results (traced, not run)."""
        with reductions(self.config.reduction):
            return jax.eval_shape(self._init, watch, user_mask, key)[1]


class Segments:
    """One run's view of a `Program`: its data on the mesh and its keys.

    `problem` holds this process's block of users (all of them in a single process); the
    global arrays are assembled from every process's block.
    """

    def __init__(self, config: TrainConfig, problem: Problem, mesh) -> None:
        self.mesh = mesh
        self.program = program_for(config, problem, mesh)
        users = NamedSharding(mesh, P(AXIS))
        rows = local_rows(users, problem.shape)
        if rows != (problem.row_start, problem.row_stop):
            raise LayoutError(
                f"this process's devices hold users {rows}, but the problem holds rows "
                f"from {problem.row_start} to {problem.row_stop}"
            )
        self.rows = rows
        self.padded_users = problem.padded_users

        # One device's rows at a time: the host never holds more of W densely.
        def device_rows(index: Any) -> np.ndarray:
            rows = index[0] if index else slice(None)
            return problem.block(
                rows.start or 0, problem.shape[0] if rows.stop is None else rows.stop
            )

        self.watch = jax.make_array_from_callback(problem.shape, users, device_rows)
        self.user_mask = global_array(users, problem.user_mask, problem.shape[:1])
        self.init_key, self.sample_key = _keys(config.seed)

    def init(self):
        """Initial (state, stacked kernel results), drawn from the prior."""
        return self.program.init(self.watch, self.user_mask, self.init_key)

    def is_compiled(self, length: int) -> bool:
        return self.program.is_compiled(length)

    def _args(self, state, stacked, start: int) -> tuple:
        return (state, stacked, self.watch, self.user_mask, self.sample_key, np.int32(start))

    def compile(self, state, stacked, length: int) -> float:
        return self.program.compile(length, *self._args(state, stacked, 0))

    def run(self, state, stacked, *, start: int, length: int):
        """Advance by `length` iterations from iteration `start`."""
        return self.program.run(length, *self._args(state, stacked, start))

    def place_state(self, arrays):
        """Put host arrays of the (padded) chain state on the mesh: U, u as this process's
        block of users ([chains, local users, ...]), V, v whole."""
        out = []
        for a, spec in zip(arrays, STATE_SPECS, strict=True):
            a = np.asarray(a)
            shape = list(a.shape)
            if spec != P():
                shape[1] = self.padded_users
            out.append(global_array(NamedSharding(self.mesh, spec), a, shape))
        return tuple(out)

    def place_results(self, leaves):
        """Put host leaves of stacked kernel results (this process's devices' rows) on the mesh."""
        expected = self.program.expected_results(self.watch, self.user_mask, self.init_key)
        local_devices = len(self.mesh.local_devices)
        shapes = [((local_devices, *x.shape[1:]), np.dtype(x.dtype)) for x in expected]
        found = [(tuple(np.shape(x)), np.asarray(x).dtype) for x in leaves]
        if shapes != found:
            raise ValueError("checkpointed kernel results do not match this run's kernel")
        sharding = NamedSharding(self.mesh, _STACKED)
        return [
            global_array(sharding, np.asarray(x), e.shape)
            for x, e in zip(leaves, expected, strict=True)
        ]


__all__ = [
    "STATE_NAMES",
    "TRACE_NAMES",
    "Problem",
    "Segments",
    "initial_state",
    "prepare",
]
