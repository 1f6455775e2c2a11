"""HMC whose inner leapfrog steps compute only the gradient (a TFP ``TransitionKernel``).

Per trajectory of L leapfrog steps the kernel evaluates L gradients; the last one is fused
with the log density (same logits pass), which the Metropolis test needs. Stock TFP HMC
evaluates value *and* gradient on every step, which costs a softplus over the whole
[C, n, M] matrix each time.

Designed to run inside ``jax.shard_map`` over a user axis, like the reference kernel:
- momenta for the sharded parts (U, u) are drawn per user from the seed folded with the
  global user index (so they do not depend on the device count), those for V, v from the
  shared seed (identical on every device), see `training.hmc.momenta`;
- padded users get zero momentum, so they never move;
- an optional diagonal inverse mass matrix M^-1 (per-part arrays without the chain axis,
  shared by the chains) preconditions the dynamics: momenta p ~ N(0, M), drift
  x += eps M^-1 p, kinetic energy p^T M^-1 p / 2: elementwise work only;
- kinetic and potential energies are double-float pairs summed over devices in a fixed
  order, so the accept decision and ``log_accept_ratio`` are identical on every device;
- acceptance is per chain (leading state dimension).

Results mirror ``MetropolisHastingsKernelResults`` with ``accepted_results`` carrying
``step_size`` / ``target_log_prob`` / ``grads_target_log_prob``, so
``tfm.DualAveragingStepSizeAdaptation`` and trace functions written for TFP HMC work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from tensorflow_probability.substrates import jax as tfp
from tensorflow_probability.substrates.jax.internal import samplers
from tensorflow_probability.substrates.jax.mcmc.kernel import TransitionKernel
from tensorflow_probability.substrates.jax.mcmc.metropolis_hastings import (
    MetropolisHastingsKernelResults,
)

from training.hmc.double_float import DoubleFloat, df_sub
from training.hmc.fast_target import FastTarget, PartArrays, make_fast_target
from training.hmc.momenta import draw_momentum, kinetic_energy, map_parts

__all__ = [
    "FastHMCResults",
    "FastHamiltonianMonteCarlo",
    "make_fast_kernel",
]


class FastHMCError(ValueError):
    """The kernel was configured or called with inconsistent arguments."""


class FastHMCResults(NamedTuple):
    """What the kernel keeps about one state (the ``accepted_results`` of a step)."""

    target_log_prob: jax.Array  # [C] float32, = round(hi + lo)
    target_log_prob_lo: jax.Array  # [C] float32 remainder: exact value is the sum of both
    grads_target_log_prob: PartArrays
    step_size: Any
    num_leapfrog_steps: jax.Array
    final_momentum: PartArrays  # p at the trajectory's end (ChEES reads the velocity M^-1 p)


def _broadcast_step(step_size: Any, n_parts: int) -> list[jax.Array]:
    parts = list(step_size) if isinstance(step_size, (list, tuple)) else [step_size] * n_parts
    if len(parts) != n_parts:
        raise FastHMCError(f"step_size has {len(parts)} parts; the state has {n_parts}")
    return [jnp.asarray(s, jnp.float32) for s in parts]


def _per_chain(x: jax.Array, like: jax.Array) -> jax.Array:
    """Reshape a [C] array to broadcast against ``like`` [C, ...]."""
    return x.reshape(x.shape + (1,) * (like.ndim - x.ndim))


class FastHamiltonianMonteCarlo(TransitionKernel):
    """HMC on a :class:`~training.hmc.fast_target.FastTarget`, identity or diagonal mass matrix.

    ``num_leapfrog_steps`` may be a traced int32 (trajectory-length adaptation); it must
    then be the same on every device. ``inverse_mass_matrix``: None (identity) or one
    array per state part without the chain axis (U [n, D], u [n], V [M, D], v [M]), this
    device's users for U, u and identical on every device for V, v.
    """

    def __init__(
        self,
        target: FastTarget,
        *,
        step_size: Any,
        num_leapfrog_steps: int | jax.Array,
        num_chains: int | None = None,
        inverse_mass_matrix: Sequence[jax.Array] | None = None,
        name: str | None = None,
    ) -> None:
        if num_chains is not None and num_chains < 1:
            raise FastHMCError(f"num_chains must be >= 1, got {num_chains}")
        if isinstance(num_leapfrog_steps, int) and num_leapfrog_steps < 1:
            raise FastHMCError(f"num_leapfrog_steps must be >= 1, got {num_leapfrog_steps}")
        if inverse_mass_matrix is not None and len(inverse_mass_matrix) != 4:
            raise FastHMCError(
                f"inverse_mass_matrix needs 4 parts (U, u, V, v); got {len(inverse_mass_matrix)}"
            )
        self._parameters = dict(
            target=target,
            step_size=step_size,
            num_leapfrog_steps=num_leapfrog_steps,
            num_chains=num_chains,
            inverse_mass_matrix=None if inverse_mass_matrix is None else tuple(inverse_mass_matrix),
            name=name or "fast_hmc",
        )

    @property
    def target(self) -> FastTarget:
        return self._parameters["target"]

    @property
    def step_size(self) -> Any:
        return self._parameters["step_size"]

    @property
    def num_leapfrog_steps(self) -> int | jax.Array:
        return self._parameters["num_leapfrog_steps"]

    @property
    def inverse_mass_matrix(self) -> PartArrays | None:
        return self._parameters["inverse_mass_matrix"]

    @property
    def name(self) -> str:
        return self._parameters["name"]

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self._parameters)

    @property
    def is_calibrated(self) -> bool:
        return True

    # -- TFP kernel interface -----------------------------------------------------------
    def bootstrap_results(self, init_state: Any) -> MetropolisHastingsKernelResults:
        parts = self._parts(init_state)
        value, grads = self.target.log_prob_and_grad(parts)
        zeros = map_parts(lambda x, _: jnp.zeros_like(x), parts, parts)
        accepted = self._results(value, grads, self.step_size, zeros)
        num_chains = parts[0].shape[0]
        return MetropolisHastingsKernelResults(
            accepted_results=accepted,
            is_accepted=jnp.ones((num_chains,), bool),
            log_accept_ratio=jnp.zeros((num_chains,), jnp.float32),
            proposed_state=init_state,
            proposed_results=accepted,
            extra=[],
            seed=samplers.zeros_seed(),
        )

    def one_step(
        self,
        current_state: Any,
        previous_kernel_results: MetropolisHastingsKernelResults,
        seed: Any = None,
    ) -> tuple[Any, MetropolisHastingsKernelResults]:
        treedef = jax.tree_util.tree_structure(current_state)
        x0 = self._parts(current_state)
        prev = previous_kernel_results.accepted_results
        seed = tfp.random.sanitize_seed(seed)
        momentum_seed, accept_seed = tfp.random.split_seed(seed, n=2)
        axis_name = self.target.axis_name

        inv_mass = self.inverse_mass_matrix
        p0 = draw_momentum(
            momentum_seed,
            x0,
            self.target.user_mask,
            axis_name=axis_name,
            inverse_mass_matrix=inv_mass,
        )
        eps = _broadcast_step(prev.step_size, len(x0))
        x1, p1, value1, grads1 = self._leapfrog(x0, p0, prev.grads_target_log_prob, eps)

        value0 = DoubleFloat(prev.target_log_prob, prev.target_log_prob_lo)
        energy_change = df_sub(
            df_sub(value1, value0),
            df_sub(
                kinetic_energy(p1, axis_name=axis_name, inverse_mass_matrix=inv_mass),
                kinetic_energy(p0, axis_name=axis_name, inverse_mass_matrix=inv_mass),
            ),
        )
        log_accept_ratio = energy_change.value()
        log_uniform = jnp.log(jax.random.uniform(accept_seed, log_accept_ratio.shape))
        is_accepted = log_uniform < jnp.where(
            jnp.isnan(log_accept_ratio), -jnp.inf, log_accept_ratio
        )

        proposed = self._results(value1, grads1, prev.step_size, p1)

        def choose(new: jax.Array, old: jax.Array) -> jax.Array:
            return jnp.where(_per_chain(is_accepted, new), new, old)

        accepted = proposed._replace(
            target_log_prob=choose(proposed.target_log_prob, prev.target_log_prob),
            target_log_prob_lo=choose(proposed.target_log_prob_lo, prev.target_log_prob_lo),
            grads_target_log_prob=map_parts(
                choose, proposed.grads_target_log_prob, prev.grads_target_log_prob
            ),
            final_momentum=map_parts(choose, proposed.final_momentum, prev.final_momentum),
        )
        next_parts = map_parts(choose, x1, x0)
        next_state = jax.tree_util.tree_unflatten(treedef, next_parts)
        return next_state, MetropolisHastingsKernelResults(
            accepted_results=accepted,
            is_accepted=is_accepted,
            log_accept_ratio=log_accept_ratio,
            proposed_state=jax.tree_util.tree_unflatten(treedef, x1),
            proposed_results=proposed,
            extra=[],
            seed=seed,
        )

    # -- internals ----------------------------------------------------------------------
    def _parts(self, state: Any) -> PartArrays:
        parts = jax.tree_util.tree_leaves(state)
        if len(parts) != 4:
            raise FastHMCError(
                f"the state must have 4 parts (U, u, V, v); got {len(parts)}: pass the "
                "model's (user_embeddings, user_bias, movie_embeddings, movie_bias)"
            )
        expected = self._parameters["num_chains"]
        if expected is not None and any(p.shape[0] != expected for p in parts):
            raise FastHMCError(
                f"every state part needs a leading chain dimension of {expected}; got "
                f"shapes {[p.shape for p in parts]}"
            )
        return tuple(parts)

    def _results(
        self, value: DoubleFloat, grads: PartArrays, step_size: Any, momentum: PartArrays
    ) -> FastHMCResults:
        return FastHMCResults(
            target_log_prob=value.hi,
            target_log_prob_lo=value.lo,
            grads_target_log_prob=grads,
            step_size=jax.tree_util.tree_map(lambda e: jnp.asarray(e, jnp.float32), step_size),
            num_leapfrog_steps=jnp.asarray(self.num_leapfrog_steps, jnp.int32),
            final_momentum=momentum,
        )

    def _leapfrog(self, x: PartArrays, p: PartArrays, grads: PartArrays, eps: list[jax.Array]):
        """L leapfrog steps; L-1 gradient-only evaluations, the last fused with the value."""
        # Drift by eps M^-1 p: the per-coordinate factors are computed once per trajectory.
        inv_mass = self.inverse_mass_matrix
        moves = eps if inv_mass is None else [e * im for e, im in zip(eps, inv_mass, strict=True)]

        def kick(p, g, scale):
            return tuple(pi + scale * e * gi for pi, gi, e in zip(p, g, eps, strict=True))

        def drift(x, p):
            return tuple(xi + e * pi for xi, pi, e in zip(x, p, moves, strict=True))

        p = kick(p, grads, 0.5)

        def inner(_, carry):
            x, p = carry
            x = drift(x, p)
            return x, kick(p, self.target.grad(x), 1.0)

        x, p = lax.fori_loop(0, self.num_leapfrog_steps - 1, inner, (x, p))
        x = drift(x, p)
        value, grads = self.target.log_prob_and_grad(x)
        p = kick(p, grads, 0.5)
        return x, p, value, grads


def make_fast_kernel(
    *,
    step_size: Any,
    num_leapfrog_steps: int,
    watch_block: jax.Array,
    user_mask: jax.Array,
    prior_scale: float = 1.0,
    axis_name: str | None,
    num_chains: int,
    block_size: int = 256,
    reduction: str = "psum",
    inverse_mass_matrix: Sequence[jax.Array] | None = None,
    name: str | None = None,
) -> FastHamiltonianMonteCarlo:
    """The fast kernel for this device's watch rows; call it inside ``shard_map``.

    ``watch_block`` [n_local, M] bool/int8 and ``user_mask`` [n_local] (False for padded
    users) are this device's shards; the state passed to the kernel is
    (U [C, n_local, D], u [C, n_local], V [C, M, D], v [C, M]) with C = ``num_chains``.
    ``inverse_mass_matrix``: see :class:`FastHamiltonianMonteCarlo`.
    """
    target = make_fast_target(
        watch_block,
        user_mask,
        prior_scale=prior_scale,
        axis_name=axis_name,
        block_size=block_size,
        reduction=reduction,
    )
    return FastHamiltonianMonteCarlo(
        target,
        step_size=step_size,
        num_leapfrog_steps=num_leapfrog_steps,
        num_chains=num_chains,
        inverse_mass_matrix=inverse_mass_matrix,
        name=name,
    )
