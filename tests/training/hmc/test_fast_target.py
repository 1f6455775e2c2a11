"""The fast likelihood equals the TFP model's log density and gradient, sharded and padded."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from tests.helpers.fast_helpers import (
    AXIS,
    pad_users,
    random_problem,
    reference_log_prob,
    user_mesh,
)
from training.hmc.double_float import compensated_sum, df_sub
from training.hmc.fast_target import make_fast_target

USERS, MOVIES, DIM, CHAINS = 13, 9, 3, 2
STATE_SPECS = (P(None, AXIS), P(None, AXIS), P(), P())


def sharded_value_and_grad(watch_p, mask, state_p, num_devices, *, block_size, prior_scale):
    mesh = user_mesh(num_devices)

    @functools.partial(
        jax.shard_map,
        mesh=mesh,
        in_specs=(P(AXIS), P(AXIS), STATE_SPECS),
        out_specs=(P(), P(), STATE_SPECS, P()),
        check_vma=False,
    )
    def run(watch_block, user_mask, state):
        target = make_fast_target(
            watch_block,
            user_mask,
            prior_scale=prior_scale,
            axis_name=AXIS,
            block_size=block_size,
        )
        value, grads = target.log_prob_and_grad(state)
        only_grads = target.grad(state)
        only_value = target.log_prob(state)
        custom = jax.grad(
            lambda *s: jnp.sum(target.target_log_prob_fn()(*s)), argnums=(0, 1, 2, 3)
        )(*state)
        same = jnp.array(
            [
                jnp.all(only_value.hi == value.hi),
                *[jnp.allclose(a, b) for a, b in zip(only_grads, grads, strict=True)],
                *[jnp.allclose(a, b) for a, b in zip(custom, grads, strict=True)],
            ]
        )
        return value.hi, value.lo, grads, same[None]

    return jax.jit(run)(jnp.asarray(watch_p), jnp.asarray(mask), tuple(map(jnp.asarray, state_p)))


@pytest.mark.parametrize(("num_devices", "block_size"), [(1, 4), (2, 3), (8, 1), (8, 64)])
def test_value_and_grad_match_tfp_model(num_devices, block_size):
    watch, state = random_problem(users=USERS, movies=MOVIES, dim=DIM, chains=CHAINS)
    prior_scale = 0.8
    ref = reference_log_prob(watch, prior_scale=prior_scale)
    ref_value = np.asarray(ref(*state))
    ref_grads = jax.grad(lambda *s: jnp.sum(ref(*s)), argnums=(0, 1, 2, 3))(*state)

    watch_p, mask, state_p = pad_users(watch, state, num_devices)
    hi, lo, grads, same = sharded_value_and_grad(
        watch_p, mask, state_p, num_devices, block_size=block_size, prior_scale=prior_scale
    )
    np.testing.assert_allclose(np.asarray(hi) + np.asarray(lo), ref_value, rtol=1e-5)
    assert np.all(np.asarray(same)), "grad()/log_prob()/custom_vjp disagree with the fused pass"
    n = USERS
    np.testing.assert_allclose(grads[0][:, :n], ref_grads[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(grads[1][:, :n], ref_grads[1], rtol=1e-4, atol=1e-4)
    # V/v grads are psum'd and must not see padded users (no sigmoid(v) leak).
    np.testing.assert_allclose(grads[2], ref_grads[2], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(grads[3], ref_grads[3], rtol=1e-4, atol=1e-4)
    assert np.all(np.asarray(grads[0])[:, n:] == 0.0)
    assert np.all(np.asarray(grads[1])[:, n:] == 0.0)


def test_value_is_bit_identical_across_devices():
    watch, state = random_problem(users=USERS, movies=MOVIES, dim=DIM, chains=CHAINS, seed=3)
    watch_p, mask, state_p = pad_users(watch, state, 4)

    @functools.partial(
        jax.shard_map,
        mesh=user_mesh(4),
        in_specs=(P(AXIS), P(AXIS), STATE_SPECS),
        out_specs=P(AXIS),
        check_vma=False,
    )
    def run(watch_block, user_mask, state):
        value = make_fast_target(watch_block, user_mask, axis_name=AXIS, block_size=2).log_prob(
            state
        )
        return jnp.stack([value.hi, value.lo])[None]

    out = np.asarray(jax.jit(run)(watch_p, mask, tuple(map(jnp.asarray, state_p))))
    assert out.shape == (4, 2, CHAINS)
    assert np.all(out == out[:1])


def test_compensated_sum_keeps_low_order_bits():
    big = np.float32(2.0**24)
    x = jnp.array([big, 1.0, 1.0, -big, 0.25, 3.0, -1.0], jnp.float32)
    total = jax.jit(compensated_sum)(x)
    assert float(total.hi) + float(total.lo) == 4.25
    a = jax.jit(compensated_sum)(jnp.array([-4.1e6, 0.3], jnp.float32))
    b = jax.jit(compensated_sum)(jnp.array([-4.1e6, 0.1], jnp.float32))
    diff = df_sub(a, b)
    assert abs(float(diff.value()) - 0.2) < 1e-6
