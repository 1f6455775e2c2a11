"""Fails loudly when the pinned JAX and TFP nightly stop working together."""

from __future__ import annotations

import importlib.metadata as md
import tomllib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P
from tensorflow_probability.substrates import jax as tfp

tfd = tfp.distributions
tfed = tfp.experimental.distribute

ROOT = Path(__file__).resolve().parents[3]


def test_installed_versions_match_the_pins():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = dict(d.split("==") for d in deps if "==" in d)
    for name in ("jax", "jaxlib", "tfp-nightly"):
        assert md.version(name).replace("-dev", ".dev") == pins[name].replace("-dev", ".dev"), name


def _sharded_normal_logp(x):
    return tfed.Sharded(
        tfd.Sample(tfd.Normal(0.0, 1.0), x.shape[-1]), shard_axis_name="users"
    ).log_prob(x)


@pytest.mark.parametrize("num_devices", [1, 2, 8])
def test_sharded_log_prob_and_gradient_under_shard_map(num_devices):
    x = jnp.arange(num_devices * 3, dtype=jnp.float32).reshape(num_devices, 3) / 10.0
    mesh = Mesh(np.array(jax.devices()[:num_devices]), ("users",))

    # As in HMC, the value and gradient are taken inside the device map.
    def per_device(block):
        return jax.value_and_grad(_sharded_normal_logp)(block[0])

    mapped = jax.shard_map(
        per_device, mesh=mesh, in_specs=P("users"), out_specs=(P(), P("users")), check_vma=False
    )
    value, grad = mapped(x)
    np.testing.assert_allclose(value, tfd.Normal(0.0, 1.0).log_prob(x).sum(), rtol=1e-6)
    np.testing.assert_allclose(grad.reshape(x.shape), -x, rtol=1e-6)


def test_replicated_gradient_is_summed_across_shards():
    """The replicated variable's gradient must include every shard's likelihood term."""
    mesh = Mesh(np.array(jax.devices()[:8]), ("users",))
    data = jnp.linspace(-1.0, 1.0, 16).reshape(8, 2)

    def per_device(mu, block):
        # The sharding-aware joint distribution psums the replicated part's gradient.
        model = tfed.JointDistributionSequential(
            [
                tfd.Normal(0.0, 1.0),
                lambda mu: tfed.Sharded(
                    tfd.Sample(tfd.Normal(mu, 1.0), 2), shard_axis_name="users"
                ),
            ]
        )

        def logp(mu):
            return model.log_prob([mu, block[0]])

        return jax.value_and_grad(logp)(mu)

    mapped = jax.shard_map(
        per_device, mesh=mesh, in_specs=(P(), P("users")), out_specs=(P(), P()), check_vma=False
    )

    def unsharded(mu):
        return tfd.Normal(0.0, 1.0).log_prob(mu) + tfd.Normal(mu, 1.0).log_prob(data).sum()

    mu = jnp.float32(0.3)
    value, grad = mapped(mu, data)
    np.testing.assert_allclose(value, unsharded(mu), rtol=1e-6)
    np.testing.assert_allclose(grad, jax.grad(unsharded)(mu), rtol=1e-5)


# -- PreconditionedHamiltonianMonteCarlo with Sharded momenta of non-unit scale ----------
# The reference sampler's diagonal mass matrix is its momentum distribution: Sharded
# Normals for U, u (each device draws its own users' momenta) and plain Normals for V, v
# (identical on every device), with per-coordinate scales. These tests pin that TFP gets
# the kinetic energy, its gradient (the velocity) and a whole preconditioned HMC step right
# under `shard_map(check_vma=False)`, against the same computation written unsharded.

PHMC_USERS, PHMC_MOVIES, PHMC_DIM, PHMC_CHAINS = 16, 5, 2, 2
PHMC_SPECS = (P(None, "users"), P(None, "users"), P(), P())


def _phmc_problem():
    rng = np.random.default_rng(5)
    n, m, d, c = PHMC_USERS, PHMC_MOVIES, PHMC_DIM, PHMC_CHAINS
    shapes = [(n, d), (n,), (m, d), (m,)]
    # Momentum scales (sqrt of the mass matrix) from 0.1 to 10, one per coordinate.
    scales = [np.exp(rng.uniform(np.log(0.1), np.log(10.0), s)).astype(np.float32) for s in shapes]
    momenta = [
        rng.normal(size=(c, *s)).astype(np.float32) * sc
        for s, sc in zip(shapes, scales, strict=True)
    ]
    state = [0.3 * rng.normal(size=(c, *s)).astype(np.float32) for s in shapes]
    watch = (rng.random((n, m)) < 0.4).astype(np.float32)
    return scales, momenta, state, watch


def _momentum_distribution(scales, num_chains):
    def normal(scale, ndims):
        loc = jnp.zeros((num_chains, *scale.shape), jnp.float32)
        return tfd.Independent(tfd.Normal(loc, scale), ndims)

    return tfed.JointDistributionSequential(
        [
            tfed.Sharded(normal(scales[0], 2), shard_axis_name="users"),
            tfed.Sharded(normal(scales[1], 1), shard_axis_name="users"),
            normal(scales[2], 2),
            normal(scales[3], 1),
        ]
    )


def _scale_specs():
    return (P("users"), P("users"), P(), P())


@pytest.mark.parametrize("num_devices", [1, 2, 8])
def test_sharded_momentum_log_prob_and_velocity_under_shard_map(num_devices):
    scales, momenta, _, _ = _phmc_problem()
    mesh = Mesh(np.array(jax.devices()[:num_devices]), ("users",))

    def per_device(scale_parts, momentum_parts):
        dist = _momentum_distribution(scale_parts, PHMC_CHAINS)
        # What PHMC's integrator does: kinetic energy = -log_prob, velocity = its gradient.
        # Chains are independent, so the gradient of the sum is each chain's gradient.
        kinetic = -dist.log_prob(list(momentum_parts))
        velocity = jax.grad(lambda p: -dist.log_prob(p).sum())(list(momentum_parts))
        return kinetic, velocity

    mapped = jax.jit(
        jax.shard_map(
            per_device,
            mesh=mesh,
            in_specs=(_scale_specs(), PHMC_SPECS),
            out_specs=(P(), list(PHMC_SPECS)),
            check_vma=False,
        )
    )
    kinetic, velocity = mapped(tuple(scales), tuple(momenta))

    expected = sum(
        -tfd.Normal(0.0, s).log_prob(p).reshape(PHMC_CHAINS, -1).sum(-1)
        for s, p in zip(scales, momenta, strict=True)
    )
    np.testing.assert_allclose(kinetic, expected, rtol=1e-5)
    for part, (v, s, p) in enumerate(zip(velocity, scales, momenta, strict=True)):
        np.testing.assert_allclose(v, p / s**2, rtol=1e-5, err_msg=f"part {part}")


@pytest.mark.parametrize("num_devices", [1, 2, 8])
def test_sharded_momenta_are_drawn_per_device_with_their_scales(num_devices):
    """U, u momenta differ per device and have the given scales; V, v are replicated."""
    scales, _, _, _ = _phmc_problem()
    chains = 2000  # many draws, to check the scale
    mesh = Mesh(np.array(jax.devices()[:num_devices]), ("users",))

    def per_device(scale_parts, key):
        parts = _momentum_distribution(scale_parts, chains).sample(seed=key)
        return [p[None] for p in parts]

    mapped = jax.jit(
        jax.shard_map(
            per_device,
            mesh=mesh,
            in_specs=(_scale_specs(), P()),
            out_specs=P("users"),
            check_vma=False,
        )
    )
    drawn = [np.asarray(x) for x in mapped(tuple(scales), jax.random.PRNGKey(3))]
    for part in (2, 3):  # replicated: identical on every device
        assert np.all(drawn[part] == drawn[part][:1])
    user_parts = [np.concatenate(list(drawn[k]), axis=1) for k in (0, 1)]  # [chains, users..]
    if num_devices > 1:  # each device draws its own users' momenta
        assert not np.allclose(drawn[0][0], drawn[0][1])
    for p, s in zip([*user_parts, drawn[2][0], drawn[3][0]], scales, strict=True):
        standardized = p / s
        np.testing.assert_allclose(standardized.std(axis=0), 1.0, atol=0.1)
        assert abs(float(standardized.mean())) < 0.05


def _model_log_prob_fn(watch_block, user_mask):
    from training.hmc.model import make_model

    model = make_model(
        num_movies=PHMC_MOVIES, latent_dim=PHMC_DIM, prior_scale=1.0, user_mask=user_mask
    )
    return lambda *state: model.log_prob((*state, watch_block))


@pytest.mark.parametrize("num_devices", [1, 2, 8])
def test_preconditioned_hmc_step_with_sharded_momenta_matches_unsharded_leapfrog(num_devices):
    """One PHMC step on the sharded model equals a hand-written unsharded leapfrog from the
    momenta PHMC drew: the proposal, its log density and the log accept ratio."""
    from training.hmc.model import unsharded_log_density

    scales, _, state, watch = _phmc_problem()
    step_size, leapfrog = 0.05, 4
    mesh = Mesh(np.array(jax.devices()[:num_devices]), ("users",))

    def per_device(scale_parts, state_parts, watch_block, key):
        mask = jnp.ones(watch_block.shape[0], bool)
        kernel = tfp.experimental.mcmc.PreconditionedHamiltonianMonteCarlo(
            _model_log_prob_fn(watch_block, mask),
            step_size,
            leapfrog,
            momentum_distribution=_momentum_distribution(scale_parts, PHMC_CHAINS),
        )
        results = kernel.bootstrap_results(list(state_parts))
        _, results = kernel.one_step(list(state_parts), results, seed=key)
        proposed = results.proposed_results
        return (
            list(results.proposed_state),
            list(proposed.initial_momentum),
            proposed.target_log_prob,
            results.log_accept_ratio,
        )

    mapped = jax.jit(
        jax.shard_map(
            per_device,
            mesh=mesh,
            in_specs=(_scale_specs(), PHMC_SPECS, P("users"), P()),
            out_specs=(list(PHMC_SPECS), list(PHMC_SPECS), P(), P()),
            check_vma=False,
        )
    )
    proposal, momentum, log_prob, log_accept = mapped(
        tuple(scales), tuple(state), jnp.asarray(watch), jax.random.PRNGKey(7)
    )

    def target(parts):
        return unsharded_log_density(tuple(parts), jnp.asarray(watch)).sum()

    inv_mass = [1.0 / s**2 for s in scales]
    x = [jnp.asarray(s) for s in state]
    p = [jnp.asarray(m) for m in momentum]

    def kinetic(p):
        return sum(
            0.5 * (pi**2 * im).reshape(PHMC_CHAINS, -1).sum(-1)
            for pi, im in zip(p, inv_mass, strict=True)
        )

    lp0 = unsharded_log_density(tuple(x), jnp.asarray(watch))
    k0 = kinetic(p)
    for _ in range(leapfrog):
        g = jax.grad(target)(x)
        p = [pi + 0.5 * step_size * gi for pi, gi in zip(p, g, strict=True)]
        x = [xi + step_size * im * pi for xi, im, pi in zip(x, inv_mass, p, strict=True)]
        g = jax.grad(target)(x)
        p = [pi + 0.5 * step_size * gi for pi, gi in zip(p, g, strict=True)]
    lp1 = unsharded_log_density(tuple(x), jnp.asarray(watch))
    for part, (got, want) in enumerate(zip(proposal, x, strict=True)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=f"part {part}")
    np.testing.assert_allclose(log_prob, lp1, rtol=1e-5)
    np.testing.assert_allclose(log_accept, (lp1 - kinetic(p)) - (lp0 - k0), atol=2e-3)
