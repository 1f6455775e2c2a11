"""The adaptation's pure pieces against their sources: Stan's windows, dual averaging,
Welford pooled over chains, Stan's regularization, and ChEES against TFP."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tensorflow_probability.substrates import jax as tfp
from tensorflow_probability.substrates.jax.experimental.mcmc import (
    gradient_based_trajectory_length_adaptation as tfp_gbtla,
)

from training.hmc.adaptation import AdaptationError, AdaptationOptions
from training.hmc.adaptation.chees import (
    CheesState,
    chees_gradient,
    chees_leapfrog_steps,
    chees_update,
    halton,
)
from training.hmc.adaptation.dual_averaging import da_final_step_size, da_init, da_update
from training.hmc.adaptation.mass_matrix import regularized_inverse_mass
from training.hmc.adaptation.schedule import stan_windows, window_flags
from training.hmc.adaptation.welford import welford_init, welford_update, welford_variance


@pytest.mark.parametrize(
    ("steps", "windows"),
    [
        # Stan's defaults on 1000 warmup iterations (CmdStan's documented schedule).
        (1000, [(75, 99), (100, 149), (150, 249), (250, 449), (450, 949)]),
        (800, [(75, 99), (100, 149), (150, 249), (250, 749)]),
        (400, [(75, 99), (100, 149), (150, 349)]),
        (150, [(75, 99)]),  # 75 + 25 + 50 fits exactly
        (100, [(15, 89)]),  # too short: 15% / 75% / 10%
        (32, [(4, 28)]),
        (19, []),  # under 20: step size only
        (0, []),
    ],
)
def test_windows_follow_stan(steps, windows):
    assert list(stan_windows(steps).slow) == windows


def test_window_flags_mark_slow_iterations_and_window_ends():
    w = stan_windows(150)
    slow, end = jax.vmap(lambda t: window_flags(w, t))(jnp.arange(-2, 152))
    slow, end = np.asarray(slow), np.asarray(end)
    iterations = np.arange(-2, 152)
    np.testing.assert_array_equal(iterations[slow], np.arange(75, 100))
    np.testing.assert_array_equal(iterations[end], [99])


def test_stan_windows_refuses_bad_sizes():
    with pytest.raises(ValueError, match="base window"):
        stan_windows(100, base_window=0)


def test_dual_averaging_finds_the_step_size_with_the_target_acceptance():
    # Acceptance falls with the step size as exp(-eps): the target 0.75 is eps = ln(4/3).
    state = da_init(1.0)
    for _ in range(1000):
        state = da_update(state, jnp.exp(-jnp.exp(state.log_step)), target=0.75)
    assert abs(float(da_final_step_size(state)) - np.log(4 / 3)) < 0.03 * np.log(4 / 3)
    # A fresh restart keeps its step size until it has seen an acceptance.
    assert float(da_final_step_size(da_init(0.3))) == pytest.approx(0.3)


def test_welford_gives_the_within_chain_variance_averaged_over_chains():
    # Three chains centred far apart (as chains of a matrix factorization sit in different
    # rotations): the estimate is each chain's own variance, averaged, not the spread of all
    # draws together, which the offsets would inflate about 10,000 times.
    rng = np.random.default_rng(0)
    offsets = np.array([-300.0, 0.0, 300.0])[None, :, None, None]
    draws = (rng.normal(size=(40, 3, 5, 2)) * [1.0, 100.0] + 7.0 + offsets).astype(np.float32)
    state = welford_init([(3, 5, 2)])
    for step in draws:
        state = welford_update(state, [jnp.asarray(step)])
    assert float(state.num_draws) == 40
    np.testing.assert_allclose(state.mean[0], draws.mean(0), rtol=1e-5)
    within = draws.var(0, ddof=1).mean(0)
    np.testing.assert_allclose(welford_variance(state)[0], within, rtol=1e-4)
    assert np.all(draws.reshape(-1, 5, 2).var(0, ddof=1)[:, 0] > 1000 * within[:, 0])


def test_regularization_is_stans_and_padded_users_keep_unit_mass():
    rng = np.random.default_rng(1)
    draws = rng.normal(size=(10, 2, 4)).astype(np.float32) * 3.0
    state = welford_init([(2, 4), (2, 4), (2, 3), (2, 3)])
    for step in draws:
        state = welford_update(state, [jnp.asarray(step)] * 2 + [jnp.asarray(step[:, :3])] * 2)
    mask = jnp.array([True, True, True, False])
    inv = regularized_inverse_mass(state, user_mask=mask)
    var = draws.var(0, ddof=1).mean(0)
    n = 20.0  # 10 draws from each of 2 chains
    expected = n / (n + 5) * var + 1e-3 * 5 / (n + 5)
    np.testing.assert_allclose(inv[0][:3], expected[:3], rtol=1e-4)
    assert float(inv[0][3]) == 1.0 and float(inv[1][3]) == 1.0
    np.testing.assert_allclose(inv[2], expected[:3], rtol=1e-4)


def test_halton_matches_tfp_and_sets_the_leapfrog_count():
    for i in range(40):
        ours = float(halton(jnp.int32(i)))
        theirs = float(tfp_gbtla._halton_sequence(jnp.float32(i)))
        assert ours == pytest.approx(theirs)
    state = CheesState(jnp.float32(1.0), jnp.float32(0.5), jnp.float32(0.0))
    steps, jitter = chees_leapfrog_steps(
        state,
        jnp.int32(0),
        jnp.float32(0.1),
        adapting=True,
        jitter_amount=1.0,
        max_leapfrog_steps=1000,
    )
    assert float(jitter) == 0.5 and int(steps) == 5  # ceil(1.0 * 0.5 / 0.1)
    steps, _ = chees_leapfrog_steps(
        state,
        jnp.int32(0),
        jnp.float32(0.1),
        adapting=False,
        jitter_amount=1.0,
        max_leapfrog_steps=2,
    )
    assert int(steps) == 2  # averaged length 0.5 -> 3 steps, capped at 2


def _chees_inputs(seed):
    rng = np.random.default_rng(seed)
    chains = 6
    shapes = [(chains, 4, 2), (chains, 4), (chains, 3, 2), (chains, 3)]
    previous = [jnp.asarray(rng.normal(size=s), jnp.float32) for s in shapes]
    proposed = [jnp.asarray(rng.normal(size=s) * 1.5, jnp.float32) for s in shapes]
    velocity = [jnp.asarray(rng.normal(size=s), jnp.float32) for s in shapes]
    accept = jnp.asarray(rng.uniform(0.2, 1.0, chains), jnp.float32)
    return previous, proposed, velocity, accept


def test_chees_gradient_matches_tfp_criterion():
    previous, proposed, velocity, accept = _chees_inputs(0)

    def tfp_criterion(dt):
        moved = [
            x + dt.reshape((-1,) + (1,) * (x.ndim - 1)) * v
            for x, v in zip(proposed, velocity, strict=True)
        ]
        return tfp.experimental.mcmc.chees_criterion(previous, moved, accept, 1.0)

    dt = jnp.zeros(accept.shape)
    value, grad = tfp_criterion(dt), jax.grad(lambda d: tfp_criterion(d).sum())(dt)
    ours, our_grad = chees_gradient(
        previous, proposed, velocity, accept, user_mask=jnp.ones(4, bool), device_sum=lambda x: x
    )
    np.testing.assert_allclose(ours, value, rtol=1e-4)
    np.testing.assert_allclose(our_grad, grad, rtol=1e-4)


def test_chees_update_matches_tfp():
    previous, proposed, velocity, accept = _chees_inputs(1)
    step_size, jitter, iteration = jnp.float32(0.1), jnp.float32(0.75), jnp.int32(6)
    state = CheesState(jnp.float32(1.3), jnp.float32(1.1), jnp.float32(0.02))
    _, grad = chees_gradient(
        previous, proposed, velocity, accept, user_mask=jnp.ones(4, bool), device_sum=lambda x: x
    )
    ours = chees_update(
        state,
        grad,
        accept,
        jitter=jitter,
        step_size=step_size,
        iteration=iteration,
        max_leapfrog_steps=1000,
    )
    results = tfp_gbtla.GradientBasedTrajectoryLengthAdaptationResults(
        inner_results=None,
        max_trajectory_length=state.trajectory_length,
        step=iteration,
        adaptation_rate=jnp.float32(0.025),
        jitter_amount=jnp.float32(1.0),
        averaged_sq_grad=state.averaged_sq_grad,
        averaged_sq_grad_adaptation_rate=jnp.float32(0.05),
        averaged_max_trajectory_length=state.averaged_trajectory_length,
        criterion=jnp.zeros_like(accept),
        seed=None,
    )
    theirs = tfp_gbtla._update_trajectory_grad(
        results,
        previous_state=previous,
        initial_velocity=velocity,
        proposed_state=proposed,
        proposed_velocity=velocity,
        trajectory_jitter=jitter,
        accept_prob=accept,
        step_size=step_size,
        criterion_fn=tfp.experimental.mcmc.chees_criterion,
        max_leapfrog_steps=1000,
        use_reverse_estimator=False,
    )
    np.testing.assert_allclose(ours.trajectory_length, theirs.max_trajectory_length, rtol=1e-5)
    np.testing.assert_allclose(
        ours.averaged_trajectory_length, theirs.averaged_max_trajectory_length, rtol=1e-5
    )
    np.testing.assert_allclose(ours.averaged_sq_grad, theirs.averaged_sq_grad, rtol=1e-5)


def test_chees_ignores_padded_users():
    previous, proposed, velocity, accept = _chees_inputs(2)
    mask = jnp.array([True, True, True, False])
    base = chees_gradient(
        previous, proposed, velocity, accept, user_mask=mask, device_sum=lambda x: x
    )
    previous[0] = previous[0].at[:, 3].set(50.0)
    proposed[1] = proposed[1].at[:, 3].set(-9.0)
    moved = chees_gradient(
        previous, proposed, velocity, accept, user_mask=mask, device_sum=lambda x: x
    )
    np.testing.assert_allclose(base, moved, rtol=1e-6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mass_matrix": "dense"}, "mass_matrix"),
        ({"trajectory": "nuts"}, "trajectory"),
        ({"reduction": "allreduce"}, "reduction"),
        ({"initial_step_size": float("nan")}, "initial_step_size"),
        ({"initial_step_size": 0.0}, "initial_step_size"),
        ({"num_leapfrog_steps": 0}, "num_leapfrog_steps"),
        ({"num_adaptation_steps": -1}, "num_adaptation_steps"),
        ({"step_size_jitter": 1.0}, "step_size_jitter"),
        ({"target_accept_prob": float("nan")}, "target_accept_prob"),
        ({"jitter_amount": 0.0}, "jitter_amount"),
        ({"windows": (75, 0, 50)}, "base window"),
    ],
)
def test_adaptation_options_refuse_bad_values(change, message):
    base = {"initial_step_size": 0.1, "num_leapfrog_steps": 5, "num_adaptation_steps": 100}
    with pytest.raises(AdaptationError, match=message):
        AdaptationOptions(**{**base, **change})
