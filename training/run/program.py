"""The compiled, shard_mapped sampler program for one kernel, shape and mesh (cached): init,
segments of `length` iterations, and the adapted kernel parameters read back out.

TFP's `tfed.Sharded` distributions psum log-densities and their gradients correctly only
when the gradient is taken inside the device map, so every kernel step runs there.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from training.config import TrainConfig
from training.hmc.adaptation import AdaptationOptions
from training.hmc.kernel_builder import KernelParams, build_kernel, log_prob_gradient
from training.hmc.model import make_prior
from training.hmc.momenta import user_normals
from training.hmc.warm_start import warm_start
from training.names import AXIS
from training.parallel.reductions import reductions
from training.run.problem import Problem

__all__ = ["SAMPLE_SPECS", "STATE_SPECS", "TRACE_NAMES", "Program", "initial_state", "program_for"]

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


def _log_prior(config: TrainConfig, state, user_mask) -> jax.Array:
    prior = make_prior(
        local_users=user_mask.shape[0],
        num_movies=state[2].shape[-2],
        latent_dim=config.latent_dim,
        prior_scale=config.prior_scale,
        user_mask=user_mask,
    )
    return prior.log_prob(tuple(state))


def kernel_params(config: TrainConfig) -> KernelParams:
    """The kernel's parameters out of a training config."""
    return KernelParams(
        likelihood=config.likelihood,
        num_chains=config.num_chains,
        latent_dim=config.latent_dim,
        prior_scale=config.prior_scale,
        reduction=config.reduction,
        adaptation=adaptation_options(config),
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
            params = kernel_params(config)
            if config.warm_start_steps:
                gradient = log_prob_gradient(params, watch=watch, user_mask=user_mask)
                state = list(
                    warm_start(
                        gradient,
                        state,
                        num_steps=config.warm_start_steps,
                        learning_rate=config.warm_start_learning_rate,
                    )
                )
            kernel = build_kernel(params, watch=watch, user_mask=user_mask)
            results = kernel.bootstrap_results(state)
        # Kernel results hold distributions whose shapes are validated on unflattening, so
        # they cross the map boundary as flat leaves; the structure is kept on the host.
        leaves, self._treedef = jax.tree.flatten(results)
        return tuple(state), self._stack(leaves)

    def _segment_per_device(self, state, stacked, watch, user_mask, key, start, *, length):
        config = self.config
        with jax.default_matmul_precision(config.matmul_precision):
            kernel = build_kernel(kernel_params(config), watch=watch, user_mask=user_mask)
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
        """Initial (state, stacked kernel results): a draw from the prior, moved toward the
        posterior by `warm_start_steps` Adam steps when the config asks for them."""
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
