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

ROOT = Path(__file__).resolve().parents[1]


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
