"""Warm start (Adam on the log posterior before burn-in): it climbs toward the posterior,
leaves padded users at zero, and gives the same state sharded on 1, 2 and 8 devices as
unsharded, for both likelihoods."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from training.config import TrainConfig
from training.data import SyntheticSpec, generate
from training.hmc.fast_target import make_fast_target
from training.hmc.warm_start import warm_start
from training.names import AXIS
from training.parallel.mesh import make_mesh, padded_users
from training.parallel.multihost import local_rows
from training.run.segments import Segments, prepare

# 13 users: on 8 devices, 3 padded user rows.
DATA = generate(SyntheticSpec(num_users=13, num_movies=11, latent_dim=2, seed=5))
CONFIG = TrainConfig(
    data="synthetic:users=13,movies=11,dim=2,seed=5",
    num_chains=2,
    num_leapfrog_steps=3,
    num_burnin_steps=4,
    num_results=2,
    latent_dim=2,
    warm_start_steps=60,
    warm_start_learning_rate=0.05,
)


def test_adam_ascends_to_the_mode_and_leaves_zero_gradient_coordinates_alone():
    mean = (jnp.array([[1.0, -2.0]]), jnp.array([0.5, 0.0]))
    scale = (jnp.array([[0.01, 3.0]]), jnp.array([1.0, 1.0]))
    frozen = jnp.array([1.0, 0.0])  # the second bias has no gradient (a padded user)

    def gradient(state):
        u, b = state
        return (-(u - mean[0]) / scale[0] ** 2, -frozen * (b - mean[1]) / scale[1] ** 2)

    start = (jnp.zeros((1, 2)), jnp.array([0.0, 7.0]))
    out = warm_start(gradient, start, num_steps=500, learning_rate=0.05)
    # Scales from 0.01 to 3 all reach the mode: Adam normalizes each coordinate's step.
    np.testing.assert_allclose(out[0], mean[0], atol=0.02)
    np.testing.assert_allclose(out[1][0], 0.5, atol=0.02)
    assert float(out[1][1]) == 7.0
    same = warm_start(gradient, start, num_steps=0, learning_rate=0.05)
    assert all(np.array_equal(a, b) for a, b in zip(same, start, strict=True))
    with pytest.raises(ValueError, match="learning_rate"):
        warm_start(gradient, start, num_steps=3, learning_rate=float("nan"))


def initial(config: TrainConfig) -> tuple[np.ndarray, ...]:
    """The run's initial state (host arrays, padding removed) on `config.devices` devices."""
    mesh = make_mesh(config.devices)
    shape = (padded_users(DATA.num_users, config.devices), DATA.num_movies)
    problem = prepare(
        DATA, num_devices=config.devices, rows=local_rows(NamedSharding(mesh, P(AXIS)), shape)
    )
    state, _ = Segments(config, problem, mesh).init()
    parts = [np.asarray(jax.device_get(x)) for x in state]
    padded = parts[0].shape[1]
    assert np.all(parts[0][:, DATA.num_users :] == 0) and np.all(parts[1][:, DATA.num_users :] == 0)
    assert padded >= DATA.num_users
    return parts[0][:, : DATA.num_users], parts[1][:, : DATA.num_users], parts[2], parts[3]


def log_posterior(state) -> np.ndarray:
    target = make_fast_target(jnp.asarray(DATA.dense(np.int8)), jnp.ones(DATA.num_users, bool))
    return np.asarray(target.log_prob(tuple(jnp.asarray(x) for x in state)).value())


@pytest.mark.parametrize("likelihood", ["fast", "reference"])
def test_warm_start_is_the_same_sharded_and_climbs_the_posterior(likelihood):
    config = CONFIG.replace(likelihood=likelihood)
    cold = initial(config.replace(warm_start_steps=0))
    warm = {d: initial(config.replace(devices=d)) for d in (1, 2, 8)}
    before, after = log_posterior(cold), log_posterior(warm[1])
    assert np.all(after > before + 10.0), (before, after)  # every chain climbed
    for d in (2, 8):
        for a, b in zip(warm[d], warm[1], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=f"{d} devices")
    # Chains started from different prior draws stay apart (R-hat needs dispersed starts).
    assert not np.allclose(warm[1][2][0], warm[1][2][1], atol=0.05)
