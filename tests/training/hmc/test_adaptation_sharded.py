"""Warmup adaptation on Gaussian targets with the fast kernel: the diagonal mass matrix
recovers the posterior variances, pays off in ESS, and is the same sharded or not."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from tensorflow_probability.substrates import jax as tfp

from tests.helpers.gaussian_target import gaussian_problem, run_adaptive
from training.config import TrainConfig
from training.hmc.adaptation import AdaptationOptions, AdaptiveHMC

DEFAULTS = TrainConfig()  # the default warmup: 1000 burn-in iterations, 80% adapting
BURNIN, DRAWS = DEFAULTS.num_burnin_steps, 500
LEAPFROG = 10


def kernel_maker(mass_matrix: str, *, adaptation_steps: int, **options):
    settings = AdaptationOptions(
        initial_step_size=0.05,
        num_leapfrog_steps=LEAPFROG,
        num_adaptation_steps=adaptation_steps,
        mass_matrix=mass_matrix,
        **options,
    )

    def make(make_inner, user_mask, axis_name):
        return AdaptiveHMC(make_inner, settings, user_mask=user_mask, axis_name=axis_name)

    return make


def flat(parts) -> np.ndarray:
    """[..., coordinates] from per-part arrays [..., *part_shape] (leading dims kept)."""
    lead = parts[2].ndim - 2  # V is [..., M, D]
    return np.concatenate([np.reshape(p, (*p.shape[:lead], -1)) for p in parts], axis=-1)


def ess(draws: np.ndarray) -> np.ndarray:
    """Cross-chain ESS per coordinate of draws [S, C, K] (TFP)."""
    x = jnp.asarray(draws, jnp.float32)
    return np.asarray(tfp.mcmc.effective_sample_size(x, cross_chain_dims=1))


def test_diagonal_adaptation_recovers_variances_and_beats_the_identity_mass():
    mean, scale = gaussian_problem(users=6, movies=5, dim=2, smallest=0.01, largest=10.0)
    runs = {}
    for kind in ("diagonal", "identity"):
        runs[kind] = run_adaptive(
            mean,
            scale,
            num_devices=None,
            chains=4,
            iterations=BURNIN + DRAWS,
            seed=3,
            make_kernel=kernel_maker(kind, adaptation_steps=DEFAULTS.num_adaptation_steps),
        )
    draws, step, inverse_mass, steps = runs["diagonal"]
    variance = flat([s**2 for s in scale])
    ratio = flat(inverse_mass) / variance
    assert np.all(np.abs(ratio - 1.0) < 0.2), f"variance ratios {np.sort(ratio)}"
    assert np.all(steps == LEAPFROG)  # fixed trajectory: equal gradient counts per draw

    worst = {kind: float(ess(flat(run[0])[BURNIN:]).min()) for kind, run in runs.items()}
    assert worst["diagonal"] >= 3.0 * worst["identity"], worst
    # The adapted metric lets the step size grow far beyond the stiffest scale (0.01).
    assert step > 30 * runs["identity"][1], (step, runs["identity"][1])
    sample_var = flat(draws)[BURNIN:].reshape(-1, variance.size).var(0)
    assert np.all(np.abs(sample_var / variance - 1.0) < 0.35), np.sort(sample_var / variance)


def device_run(devices: int | None):
    """A run whose one slow window ends at iteration 53, with ChEES, on 13 users: unsharded
    (None) or sharded on ``devices`` (8 devices: 3 padded user rows).

    The step size stays fixed: dual averaging feeds each iteration's acceptance back into
    the next step size, which amplifies the last-bit differences of differently compiled
    programs (the sharded and unsharded XLA programs round a few operations differently)
    until chains part ways; without it they stay within float rounding for the whole run.
    """
    mean, scale = gaussian_problem(users=13, movies=4, dim=2, smallest=0.1, largest=3.0)
    make = kernel_maker("diagonal", adaptation_steps=60, trajectory="chees", adapt_step_size=False)
    return run_adaptive(
        mean, scale, num_devices=devices, chains=3, iterations=80, seed=5, make_kernel=make
    )


@pytest.fixture(scope="module")
def unsharded_run():
    return device_run(None)


@pytest.mark.parametrize("devices", [1, 2, 8])
def test_sharded_adaptation_equals_unsharded(unsharded_run, devices):
    draws, step, inverse_mass, steps = device_run(devices)
    ref_draws, ref_step, ref_inverse_mass, ref_steps = unsharded_run
    assert not np.allclose(flat(ref_inverse_mass), 1.0)  # the window ended: adapted
    np.testing.assert_allclose(flat(inverse_mass), flat(ref_inverse_mass), rtol=1e-5)
    assert step == ref_step
    np.testing.assert_array_equal(steps, ref_steps)  # the same ChEES leapfrog counts
    assert len(set(ref_steps.tolist())) > 5  # Halton-jittered, adapting lengths
    np.testing.assert_allclose(flat(draws), flat(ref_draws), rtol=1e-5, atol=1e-5)
