"""The gradient-only HMC kernel: posterior vs TFP HMC, sharded momenta, step-size adaptation."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P
from tensorflow_probability.substrates import jax as tfp

from tests.helpers.fast_helpers import (
    AXIS,
    pad_users,
    random_problem,
    reference_log_prob,
    user_mesh,
)
from training.hmc.fast_kernel import make_fast_kernel
from training.hmc.momenta import draw_momentum

tfm = tfp.mcmc
STATE_SPECS = (P(None, AXIS), P(None, AXIS), P(), P())
TRACE_SPECS = (P(None, None, AXIS), P(None, None, AXIS), P(), P())


def identifiable(watch: np.ndarray, samples) -> dict[str, np.ndarray]:
    """Quantities invariant to the factorization's symmetries, each [S, C]."""
    user_emb, user_bias, movie_emb, movie_bias = (np.asarray(x) for x in samples)
    logits = (
        np.einsum("scnd,scmd->scnm", user_emb, movie_emb)
        + user_bias[..., :, None]
        + movie_bias[..., None, :]
    )
    loglik = np.sum(watch * logits - np.logaddexp(0.0, logits), axis=(-2, -1))
    out = {"loglik": loglik}
    for i, j in [(0, 0), (2, 3), (6, 1), (4, 4)]:
        out[f"logit[{i},{j}]"] = logits[..., i, j]
    return out


def mean_and_se(x: np.ndarray) -> tuple[float, float]:
    ess = float(np.sum(tfm.effective_sample_size(jnp.asarray(x, jnp.float32))))
    return float(np.mean(x)), float(np.std(x) / np.sqrt(max(ess, 1.0)))


def run_fast(watch, init, *, num_devices, step_size, leapfrog, burnin, results, seed):
    watch_p, mask, init_p = pad_users(watch, init, num_devices, fill=0.0)
    chains = init[0].shape[0]

    @functools.partial(
        jax.shard_map,
        mesh=user_mesh(num_devices),
        in_specs=(P(AXIS), P(AXIS), STATE_SPECS, P()),
        out_specs=(TRACE_SPECS, P()),
        check_vma=False,
    )
    def run(watch_block, user_mask, state, key):
        kernel = make_fast_kernel(
            step_size=step_size,
            num_leapfrog_steps=leapfrog,
            watch_block=watch_block,
            user_mask=user_mask,
            prior_scale=1.0,
            axis_name=AXIS,
            num_chains=chains,
            block_size=3,
        )
        samples, accepted = tfm.sample_chain(
            results,
            state,
            kernel=kernel,
            num_burnin_steps=burnin,
            trace_fn=lambda _, pkr: pkr.is_accepted,
            seed=key,
        )
        return tuple(samples), accepted

    samples, accepted = jax.jit(run)(watch_p, mask, init_p, jax.random.PRNGKey(seed))
    n = watch.shape[0]
    return (samples[0][:, :, :n], samples[1][:, :, :n], samples[2], samples[3]), accepted


def run_tfp(watch, init, *, step_size, leapfrog, burnin, results, seed):
    kernel = tfm.HamiltonianMonteCarlo(reference_log_prob(watch), step_size, leapfrog)
    samples, accepted = jax.jit(
        lambda key: tfm.sample_chain(
            results,
            list(init),
            kernel=kernel,
            num_burnin_steps=burnin,
            trace_fn=lambda _, pkr: pkr.is_accepted,
            seed=key,
        )
    )(jax.random.PRNGKey(seed))
    return tuple(samples), accepted


def test_fast_posterior_matches_tfp_hmc():
    watch, init = random_problem(users=7, movies=5, dim=2, chains=4, seed=1)
    init = tuple(0.1 * x for x in init)
    opts = dict(step_size=0.2, leapfrog=6, burnin=200, results=1500)
    fast, fast_acc = run_fast(watch, init, num_devices=2, seed=11, **opts)
    ref, ref_acc = run_tfp(watch, init, seed=12, **opts)
    assert 0.5 < float(np.mean(fast_acc)) <= 1.0
    assert abs(float(np.mean(fast_acc)) - float(np.mean(ref_acc))) < 0.1
    fast_q, ref_q = identifiable(watch, fast), identifiable(watch, ref)
    for name in fast_q:
        m_fast, se_fast = mean_and_se(fast_q[name])
        m_ref, se_ref = mean_and_se(ref_q[name])
        z = (m_fast - m_ref) / np.hypot(se_fast, se_ref)
        assert abs(z) < 4.0, (
            f"{name}: fast {m_fast:.3f}±{se_fast:.3f} vs tfp {m_ref:.3f}±{se_ref:.3f}"
        )


def test_momenta_differ_for_users_and_agree_for_movies():
    devices = 4
    watch, state = random_problem(users=8, movies=5, dim=3, chains=2)
    _, mask, state_p = pad_users(watch, state, devices)

    @functools.partial(
        jax.shard_map,
        mesh=user_mesh(devices),
        in_specs=(P(AXIS), STATE_SPECS, P()),
        out_specs=P(AXIS),
        check_vma=False,
    )
    def run(user_mask, state, key):
        momentum = draw_momentum(key, state, user_mask, axis_name=AXIS)
        return tuple(p[None] for p in momentum)

    p = [np.asarray(x) for x in jax.jit(run)(mask, state_p, jax.random.PRNGKey(0))]
    for part in p[:2]:  # U, u: different on every device
        flat = part.reshape(devices, -1)
        assert len({row.tobytes() for row in flat}) == devices
    for part in p[2:]:  # V, v: identical on every device
        assert np.all(part == part[:1])
        assert np.std(part) > 0.5


def test_dual_averaging_adapts_step_size_identically_on_every_device():
    devices = 2
    watch, init = random_problem(users=7, movies=5, dim=2, chains=2, seed=2)
    watch_p, mask, init_p = pad_users(watch, init, devices, fill=0.0)

    @functools.partial(
        jax.shard_map,
        mesh=user_mesh(devices),
        in_specs=(P(AXIS), P(AXIS), STATE_SPECS, P()),
        out_specs=P(AXIS),
        check_vma=False,
    )
    def run(watch_block, user_mask, state, key):
        kernel = make_fast_kernel(
            step_size=1.5,
            num_leapfrog_steps=4,
            watch_block=watch_block,
            user_mask=user_mask,
            axis_name=AXIS,
            num_chains=2,
            block_size=2,
        )
        kernel = tfm.DualAveragingStepSizeAdaptation(kernel, num_adaptation_steps=150)
        _, (step, log_accept) = tfm.sample_chain(
            200,
            state,
            kernel=kernel,
            trace_fn=lambda _, pkr: (
                pkr.inner_results.accepted_results.step_size,
                pkr.inner_results.log_accept_ratio,
            ),
            seed=key,
        )
        return step[None], log_accept[None]

    step, log_accept = (
        np.asarray(x) for x in jax.jit(run)(watch_p, mask, init_p, jax.random.PRNGKey(4))
    )
    assert np.all(step == step[:1]) and np.all(log_accept == log_accept[:1])
    final = step[0, -1]
    assert final < 0.75, f"step size should shrink from 1.5, got {final}"
    accept = np.mean(np.exp(np.minimum(log_accept[0, 160:], 0.0)))
    assert 0.6 < accept < 0.95
