"""The sharded log density and its gradient at a fixed state, on whatever mesh is up.

`python -m tests.helpers.multihost_worker ADDRESS NUM_PROCESSES PROCESS_ID LOCAL_DEVICES OUT` is
one process of a multi-process run (tests/training/parallel/test_multihost.py starts them); process 0 writes
OUT (.npz). The test calls `value_and_grad` itself on a single-process mesh to compare.
"""

from __future__ import annotations

import sys

import numpy as np

from training.config import TrainConfig, preset
from training.data import WatchData, load_source

# 37 users on 8 devices: the last device holds 2 real users and 3 padded rows.
CONFIG = preset("smoke").replace(devices=8, data="synthetic:users=37,movies=30,dim=3,seed=0")
REDUCTIONS = ("psum", "ordered")


def fixed_state(config: TrainConfig, data: WatchData) -> tuple[np.ndarray, ...]:
    """A seeded state of the reference shapes, with the user axis padded by zero rows."""
    from training.parallel.mesh import padded_users

    rng = np.random.default_rng(11)
    c, n, m, d = config.num_chains, data.num_users, data.num_movies, config.latent_dim
    extra = padded_users(n, config.devices) - n
    u = rng.normal(size=(c, n, d)).astype(np.float32)
    b = rng.normal(size=(c, n)).astype(np.float32)
    return (
        np.concatenate([u, np.zeros((c, extra, d), np.float32)], axis=1),
        np.concatenate([b, np.zeros((c, extra), np.float32)], axis=1),
        rng.normal(size=(c, m, d)).astype(np.float32),
        rng.normal(size=(c, m)).astype(np.float32),
    )


def value_and_grad(config: TrainConfig, data: WatchData):
    """(log density [chains], gradients of the padded state) on process 0, via the
    production path: this process's users only, global arrays, sharded model."""
    import jax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from training.hmc.model import make_model
    from training.names import AXIS
    from training.parallel.mesh import make_mesh, padded_users
    from training.parallel.multihost import barrier, gather_to_primary, local_rows
    from training.parallel.reductions import reductions
    from training.run.segments import STATE_SPECS, Segments, prepare

    mesh = make_mesh(config.devices)
    shape = (padded_users(data.num_users, config.devices), data.num_movies)
    lo, hi = local_rows(NamedSharding(mesh, P(AXIS)), shape)
    problem = prepare(data, num_devices=config.devices, rows=(lo, hi))
    segments = Segments(config, problem, mesh)
    full = fixed_state(config, data)
    state = segments.place_state((full[0][:, lo:hi], full[1][:, lo:hi], full[2], full[3]))

    def per_device(u_emb, u_bias, m_emb, m_bias, watch, mask):
        model = make_model(
            num_movies=data.num_movies,
            latent_dim=config.latent_dim,
            prior_scale=config.prior_scale,
            user_mask=mask,
        )

        def logp(*s):
            return model.log_prob((*s, watch.astype(np.float32)))

        value = logp(u_emb, u_bias, m_emb, m_bias)
        grads = jax.grad(lambda *s: logp(*s).sum(), argnums=(0, 1, 2, 3))(
            u_emb, u_bias, m_emb, m_bias
        )
        return value, grads

    mapped = jax.jit(
        jax.shard_map(
            per_device,
            mesh=mesh,
            in_specs=(*STATE_SPECS, P(AXIS), P(AXIS)),
            out_specs=(P(), STATE_SPECS),
            check_vma=False,
        )
    )
    barrier(f"value_and_grad {config.reduction}")  # as train() does before its first collectives
    with reductions(config.reduction):
        value, grads = mapped(*state, segments.watch, segments.user_mask)
    # Small chunks on purpose: the gather must reassemble users across chunk boundaries.
    host = [gather_to_primary(g, axis=1, max_bytes=64) for g in grads]
    return np.asarray(value), host


def main(argv: list[str]) -> int:
    address, processes, pid, local, out = argv
    from training.parallel.mesh import request_cpu_devices

    request_cpu_devices(int(local), exact=True)
    from training.parallel.distributed import Cluster, initialize

    initialize(
        Cluster(
            mode="on",
            coordinator_address=address,
            num_processes=int(processes),
            process_id=int(pid),
            heartbeat_timeout_s=10,
            init_timeout_s=300,
            shutdown_timeout_s=300,
        )
    )
    data = load_source(CONFIG.data)
    arrays = {}
    for reduction in REDUCTIONS:
        value, grads = value_and_grad(CONFIG.replace(reduction=reduction), data)
        arrays[f"{reduction}/value"] = value
        for i, g in enumerate(grads):
            if g is not None:
                arrays[f"{reduction}/grad{i}"] = g
    if int(pid) == 0:
        np.savez(out, **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
