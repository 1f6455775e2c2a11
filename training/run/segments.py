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

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from training.config import TrainConfig
from training.names import AXIS, STATE_NAMES
from training.parallel.multihost import LayoutError, global_array, local_rows
from training.run.problem import Problem, prepare
from training.run.program import STATE_SPECS, TRACE_NAMES, initial_state, program_for

__all__ = [
    "STATE_NAMES",
    "STATE_SPECS",
    "TRACE_NAMES",
    "Problem",
    "Progress",
    "Segments",
    "initial_state",
    "prepare",
]

Progress = Callable[[dict[str, Any]], None]
_STACKED = P(AXIS)


def _keys(seed: int) -> tuple[np.ndarray, np.ndarray]:
    init_key, sample_key = jax.random.split(jax.random.PRNGKey(seed))
    # Host values: every process passes the same keys into the jitted, mesh-wide programs.
    return np.asarray(init_key), np.asarray(sample_key)


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
