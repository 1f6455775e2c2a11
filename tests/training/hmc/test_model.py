"""The sharded model agrees with the plain, unsharded density; momenta shard as intended."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from training.hmc.kernel_builder import momentum_distribution
from training.hmc.model import make_model, unsharded_log_density
from training.names import AXIS
from training.parallel.mesh import MeshError, make_mesh, padded_users
from training.run.segments import STATE_SPECS

NUM_USERS, NUM_MOVIES, DIM, CHAINS = 13, 7, 3, 2  # 13 users: padding on 2 and 8 devices
PRIOR_SCALE = 1.5


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    watch = rng.random((NUM_USERS, NUM_MOVIES)) < 0.3
    shapes = [
        (CHAINS, NUM_USERS, DIM),
        (CHAINS, NUM_USERS),
        (CHAINS, NUM_MOVIES, DIM),
        (CHAINS, NUM_MOVIES),
    ]
    state = tuple(rng.normal(size=s).astype(np.float32) for s in shapes)
    return watch, state


def _sharded_value_and_grad(watch, state, num_devices):
    n_pad = padded_users(NUM_USERS, num_devices)
    extra = n_pad - NUM_USERS

    def pad(x):  # padded rows hold junk on purpose: the mask must hide it
        return np.concatenate([x, np.full((CHAINS, extra, *x.shape[2:]), 3.0, np.float32)], 1)

    watch_p = np.concatenate([watch, np.ones((extra, NUM_MOVIES), bool)])
    mask = np.arange(n_pad) < NUM_USERS

    def per_device(u_emb, u_bias, m_emb, m_bias, w, m):
        model = make_model(
            num_movies=NUM_MOVIES, latent_dim=DIM, prior_scale=PRIOR_SCALE, user_mask=m
        )

        def logp(*s):
            return model.log_prob((*s, w.astype(jnp.float32))).sum()

        return jax.value_and_grad(logp, argnums=(0, 1, 2, 3))(u_emb, u_bias, m_emb, m_bias)

    mapped = jax.jit(
        jax.shard_map(
            per_device,
            mesh=make_mesh(num_devices),
            in_specs=(*STATE_SPECS, P(AXIS), P(AXIS)),
            out_specs=(P(), STATE_SPECS),
            check_vma=False,
        )
    )
    value, grads = mapped(pad(state[0]), pad(state[1]), state[2], state[3], watch_p, mask)
    return value, [np.asarray(g) for g in grads]


@pytest.mark.parametrize("num_devices", [1, 2, 8])
def test_sharded_density_and_gradients_match_unsharded(problem, num_devices):
    watch, state = problem
    value, grads = _sharded_value_and_grad(watch, state, num_devices)

    def reference(*s):
        return unsharded_log_density(s, jnp.asarray(watch), prior_scale=PRIOR_SCALE).sum()

    ref_value, ref_grads = jax.value_and_grad(reference, argnums=(0, 1, 2, 3))(*state)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5)
    for i, (g, r) in enumerate(zip(grads, ref_grads, strict=True)):
        if i < 2:  # user variables: real rows match, padded rows get exactly zero gradient
            np.testing.assert_allclose(g[:, :NUM_USERS], r, rtol=1e-4, atol=1e-4)
            assert np.all(g[:, NUM_USERS:] == 0.0)
        else:
            np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)


def test_unsharded_density_matches_a_direct_formula(problem):
    watch, (u_emb, u_bias, m_emb, m_bias) = problem
    z = np.einsum("cnd,cmd->cnm", u_emb, m_emb) + u_bias[:, :, None] + m_bias[:, None, :]
    p = 1 / (1 + np.exp(-z))
    loglik = np.where(watch, np.log(p), np.log1p(-p)).sum((1, 2))

    def normal(x):
        return (-0.5 * (x / PRIOR_SCALE) ** 2 - np.log(PRIOR_SCALE * np.sqrt(2 * np.pi))).sum(
            tuple(range(1, x.ndim))
        )

    expected = loglik + sum(normal(x) for x in (u_emb, u_bias, m_emb, m_bias))
    got = unsharded_log_density((u_emb, u_bias, m_emb, m_bias), watch, prior_scale=PRIOR_SCALE)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("num_devices", [2, 8])
def test_momenta_differ_across_devices_for_users_and_agree_for_movies(num_devices):
    local_users = 3

    def per_device(key):
        dist = momentum_distribution(
            num_chains=CHAINS, local_users=local_users, num_movies=NUM_MOVIES, latent_dim=DIM
        )
        return [x[None] for x in dist.sample(seed=key)]

    mapped = jax.jit(
        jax.shard_map(
            per_device,
            mesh=make_mesh(num_devices),
            in_specs=P(),
            out_specs=P(AXIS),
            check_vma=False,
        )
    )
    u_emb, u_bias, m_emb, m_bias = (np.asarray(x) for x in mapped(jax.random.PRNGKey(7)))
    assert u_emb.shape == (num_devices, CHAINS, local_users, DIM)
    for d in range(1, num_devices):
        assert not np.allclose(u_emb[d], u_emb[0])
        assert not np.allclose(u_bias[d], u_bias[0])
        np.testing.assert_array_equal(m_emb[d], m_emb[0])
        np.testing.assert_array_equal(m_bias[d], m_bias[0])


def test_mesh_refuses_more_devices_than_exist():
    with pytest.raises(MeshError, match="only 8"):
        make_mesh(len(jax.devices()) + 1)


def test_padded_users_rounds_up():
    assert [padded_users(n, 8) for n in (1, 8, 13, 16)] == [8, 8, 16, 16]
