"""Windowed adaptation around an HMC kernel: step size, diagonal mass matrix, trajectory.

``AdaptiveHMC`` is a TFP ``TransitionKernel`` that owns the tuning parameters of an inner
HMC kernel and rebuilds that kernel every iteration from them (``make_inner(step_size,
num_leapfrog_steps, inverse_mass_matrix)``), so the same code drives the fast kernel and
TFP's ``PreconditionedHamiltonianMonteCarlo``. Over the first ``num_adaptation_steps``
iterations it follows Stan's warmup (`training.hmc.adaptation.schedule`):

- dual averaging of the step size toward ``target_accept_prob`` (the mean acceptance
  probability over chains), every adaptation iteration;
- with ``mass_matrix="diagonal"``: during slow windows, each coordinate's variance is
  estimated within each chain and averaged over chains (Welford; not across chains, whose
  spread includes the between-chain part); at a window's end the inverse mass
  matrix becomes Stan's regularized estimate, the estimator is emptied, and dual averaging
  restarts from its averaged step size (as BlackJAX does);
- with ``trajectory="chees"``: the trajectory length follows ChEES
  (`training.hmc.adaptation.chees`);
- at the end, the step size is fixed at the dual-averaging average (Stan's
  ``complete_adaptation``), and a ChEES trajectory at its running average.

Every iteration's step size is jittered uniformly in [(1 - j) eps, (1 + j) eps], j =
``step_size_jitter``, with the iteration's seed (PyMC's HMC default is j = 0.15): this
breaks resonances of a fixed trajectory length with periodic directions of the posterior.

Everything the adaptation knows is in ``AdaptiveResults`` (NamedTuples of arrays), which
travel through the sampler's scan and its checkpoints: resuming is exact. Inside
``shard_map`` the inverse mass matrix of U, u (and their variance estimates) are this
device's users; those of V, v are computed from replicated draws by the same elementwise
arithmetic, so they are identical on every device. Acceptance and trajectory decisions use
values that are identical on every device, so all devices run the same number of leapfrog
steps.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from tensorflow_probability.substrates import jax as tfp
from tensorflow_probability.substrates.jax.mcmc.kernel import TransitionKernel

from training.hmc.adaptation.chees import (
    CheesState,
    chees_adapt,
    chees_init,
    chees_leapfrog_steps,
)
from training.hmc.adaptation.dual_averaging import (
    DualAveragingState,
    da_final_step_size,
    da_init,
    da_update,
)
from training.hmc.adaptation.mass_matrix import regularized_inverse_mass, unit_inverse_mass
from training.hmc.adaptation.options import AdaptationOptions
from training.hmc.adaptation.schedule import window_flags
from training.hmc.adaptation.welford import WelfordState, welford_init, welford_update
from training.parallel.reductions import device_sum

__all__ = ["AdaptiveHMC", "AdaptiveResults", "InnerFactory"]

InnerFactory = Callable[[jax.Array, Any, "tuple[jax.Array, ...] | None"], TransitionKernel]
"""(step size, leapfrog steps, inverse mass matrix or None) -> an HMC kernel whose results
are TFP ``MetropolisHastingsKernelResults`` with ``accepted_results.step_size``,
``proposed_state`` and ``proposed_results.final_momentum``."""


class AdaptiveResults(NamedTuple):
    """The adaptation state next to the inner kernel's results.

    ``step_size`` is the base step size of the next iteration (before jitter);
    ``used_step_size`` and ``num_leapfrog_steps`` are what the last iteration ran with.
    ``variance`` and ``inverse_mass_matrix`` are None for the identity metric,
    ``trajectory`` None for a fixed trajectory length.
    """

    inner_results: Any
    iteration: jax.Array
    step_size: jax.Array
    used_step_size: jax.Array
    num_leapfrog_steps: jax.Array
    dual_averaging: DualAveragingState
    variance: WelfordState | None
    inverse_mass_matrix: tuple[jax.Array, ...] | None
    trajectory: CheesState | None


class AdaptiveHMC(TransitionKernel):
    """Stan-style windowed adaptation (``options``) of an HMC kernel built by ``make_inner``.

    State parts are (U [C, n, D], u [C, n], V [C, M, D], v [C, M]); ``user_mask`` [n] marks
    this device's real users; ``axis_name`` is the mesh axis the users are split over (None
    unsharded).
    """

    def __init__(
        self,
        make_inner: InnerFactory,
        options: AdaptationOptions,
        *,
        user_mask: jax.Array,
        axis_name: str | None,
    ) -> None:
        self._make_inner = make_inner
        self._options = options
        self._windows = options.schedule()
        self._user_mask = user_mask
        self._axis_name = axis_name

    @property
    def options(self) -> AdaptationOptions:
        return self._options

    @property
    def parameters(self) -> dict[str, Any]:
        return {
            "make_inner": self._make_inner,
            "options": self._options,
            "user_mask": self._user_mask,
            "axis_name": self._axis_name,
        }

    @property
    def is_calibrated(self) -> bool:
        return True

    # -- TFP kernel interface -----------------------------------------------------------
    def bootstrap_results(self, init_state: Any) -> AdaptiveResults:
        parts = jax.tree_util.tree_leaves(init_state)
        shapes = [p.shape[1:] for p in parts]
        eps = jnp.float32(self._options.initial_step_size)
        steps = self._options.num_leapfrog_steps
        diagonal = self._options.mass_matrix == "diagonal"
        inv_mass = unit_inverse_mass(shapes) if diagonal else None
        inner = self._make_inner(eps, steps, inv_mass)
        return AdaptiveResults(
            inner_results=inner.bootstrap_results(init_state),
            iteration=jnp.zeros((), jnp.int32),
            step_size=eps,
            used_step_size=eps,
            num_leapfrog_steps=jnp.int32(steps),
            dual_averaging=da_init(eps),
            variance=welford_init([p.shape for p in parts]) if diagonal else None,
            inverse_mass_matrix=inv_mass,
            trajectory=(
                chees_init(self._options.initial_step_size, steps)
                if self._options.trajectory == "chees"
                else None
            ),
        )

    def one_step(
        self, current_state: Any, previous_kernel_results: AdaptiveResults, seed: Any = None
    ) -> tuple[Any, AdaptiveResults]:
        prev = previous_kernel_results
        seed = tfp.random.sanitize_seed(seed)
        jitter_seed, inner_seed = tfp.random.split_seed(seed, n=2)
        t = prev.iteration
        adapting = t < self._options.num_adaptation_steps

        j = self._options.step_size_jitter
        u = jax.random.uniform(jitter_seed, (), jnp.float32, -1.0, 1.0)
        eps = prev.step_size * (1.0 + j * u) if j > 0 else prev.step_size
        if prev.trajectory is None:
            steps: Any = self._options.num_leapfrog_steps
            jitter = None
        else:
            steps, jitter = chees_leapfrog_steps(
                prev.trajectory,
                t,
                eps,
                adapting=adapting,
                jitter_amount=self._options.jitter_amount,
                max_leapfrog_steps=self._options.max_leapfrog_steps,
            )
        inner = self._make_inner(eps, steps, prev.inverse_mass_matrix)
        new_state, mh = inner.one_step(
            current_state, _with_step_size(prev.inner_results, eps), seed=inner_seed
        )

        ratio = mh.log_accept_ratio
        accept = jnp.where(jnp.isnan(ratio), 0.0, jnp.exp(jnp.minimum(ratio, 0.0)))
        dual = _choose(
            adapting & self._options.adapt_step_size,
            da_update(
                prev.dual_averaging, jnp.mean(accept), target=self._options.target_accept_prob
            ),
            prev.dual_averaging,
        )
        step_size = jnp.where(
            adapting & self._options.adapt_step_size, jnp.exp(dual.log_step), prev.step_size
        )
        variance, inv_mass = prev.variance, prev.inverse_mass_matrix
        if variance is not None:
            slow, window_end = window_flags(self._windows, t)
            new_parts = jax.tree_util.tree_leaves(new_state)
            variance = _choose(slow, welford_update(variance, new_parts), variance)
            variance, inv_mass, dual, step_size = lax.cond(
                window_end,
                self._end_window,
                lambda v, im, d, s: (v, im, d, s),
                variance,
                inv_mass,
                dual,
                step_size,
            )
        if self._options.adapt_step_size:
            last = t == self._options.num_adaptation_steps - 1
            step_size = jnp.where(last, da_final_step_size(dual), step_size)

        trajectory = prev.trajectory
        if trajectory is not None and jitter is not None:
            adapted = chees_adapt(
                trajectory,
                previous=jax.tree_util.tree_leaves(current_state),
                proposed=jax.tree_util.tree_leaves(mh.proposed_state),
                final_momentum=jax.tree_util.tree_leaves(mh.proposed_results.final_momentum),
                inverse_mass_matrix=prev.inverse_mass_matrix,
                accept_prob=accept,
                jitter=jitter,
                step_size=eps,
                iteration=t,
                max_leapfrog_steps=self._options.max_leapfrog_steps,
                user_mask=self._user_mask,
                device_sum=functools.partial(
                    device_sum, axis_name=self._axis_name, kind=self._options.reduction
                ),
            )
            trajectory = _choose(adapting, adapted, trajectory)
        return new_state, AdaptiveResults(
            inner_results=mh,
            iteration=t + 1,
            step_size=step_size.astype(jnp.float32),
            used_step_size=jnp.asarray(eps, jnp.float32),
            num_leapfrog_steps=jnp.asarray(steps, jnp.int32),
            dual_averaging=dual,
            variance=variance,
            inverse_mass_matrix=inv_mass,
            trajectory=trajectory,
        )

    # -- internals ----------------------------------------------------------------------
    def _end_window(self, variance, inv_mass, dual, step_size):
        """A slow window ends: new metric, empty estimator, dual averaging restarted."""
        del inv_mass
        new_inv_mass = regularized_inverse_mass(variance, user_mask=self._user_mask)
        empty = welford_init([m.shape for m in variance.mean])
        if not self._options.adapt_step_size:
            return empty, new_inv_mass, dual, step_size
        restart = da_final_step_size(dual)
        return empty, new_inv_mass, da_init(restart), restart


def _with_step_size(mh: Any, step_size: jax.Array) -> Any:
    """Kernels that read their step size from their results (the fast kernel) get it
    there; TFP's HMC keeps an empty placeholder and uses its constructor's."""
    accepted = mh.accepted_results
    if not jax.tree_util.tree_leaves(accepted.step_size):
        return mh
    return mh._replace(accepted_results=accepted._replace(step_size=step_size))


def _choose(pred: jax.Array, new: Any, old: Any) -> Any:
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), new, old)
