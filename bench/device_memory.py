"""Per-device memory of one compiled HMC segment, from XLA, next to the README's formula.

    python bench/device_memory.py [--users 6040 --movies 3706 --latent-dim 20 --chains 2
        --devices 8 --segment 20 --reduction psum]

Compiles (does not run) the segment program on fake CPU devices and prints XLA's memory
analysis per device (arguments, outputs, temporaries) and the formula's estimate. The
device count P only changes the user block L = ceil(N / P), so the figure is what one
device of a P-device mesh needs, whether those devices sit on one host or many.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def formula(*, n: int, m: int, d: int, c: int, p: int, t: int, ordered: bool) -> dict:
    """The README's per-device estimate in bytes (float32 = 4 bytes, bool = 1 byte).

    The L x M coefficients (11 + 24 C) were fitted to XLA's figures for C = 1, 2, 4: the
    bool block, its float32 copy and masks (~11 bytes per entry) plus, per chain, about six
    float32 [L, M] temporaries (logits, their sigmoid and softplus, cotangents).
    """
    local = -(-n // p)
    dense = local * m * (11 + 24 * c)
    params = c * (d + 1) * (local + m)  # U, u, V, v floats per copy
    state = 4 * params * 6  # state, momentum, proposal, gradients
    draws = 4 * params * t  # one segment's draws, until fetched
    reduce = 4 * p * c * m * (d + 1) if ordered else 0  # ordered sum: all-gathered grads
    total = dense + state + draws + reduce
    return {"dense_blocks": dense, "state": state, "draws": draws,
            "ordered_gather": reduce, "total": total}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--users", type=int, default=6040)
    ap.add_argument("--movies", type=int, default=3706)
    ap.add_argument("--latent-dim", type=int, default=20)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--devices", type=int, default=8)
    ap.add_argument("--segment", type=int, default=20)
    ap.add_argument("--leapfrog", type=int, default=10)
    ap.add_argument("--reduction", default="psum", choices=("psum", "ordered"))
    args = ap.parse_args()

    from training.mesh import request_cpu_devices

    request_cpu_devices(args.devices)
    from training.config import TrainConfig
    from training.data import SyntheticSpec, generate
    from training.mesh import make_mesh
    from training.sampler import Segments, prepare

    data = generate(
        SyntheticSpec(num_users=args.users, num_movies=args.movies, latent_dim=2, seed=0)
    )
    config = TrainConfig(
        data="synthetic", num_chains=args.chains, latent_dim=args.latent_dim,
        devices=args.devices, segment_size=args.segment, num_leapfrog_steps=args.leapfrog,
        num_burnin_steps=0, num_results=args.segment, reduction=args.reduction,
    )  # fmt: skip
    mesh = make_mesh(args.devices)
    segments = Segments(config, prepare(data, num_devices=args.devices), mesh)
    state, results = segments.init()
    segments.compile(state, results, args.segment)
    analysis = segments.program._compiled[args.segment].memory_analysis()
    xla = {
        "arguments": analysis.argument_size_in_bytes,
        "outputs": analysis.output_size_in_bytes,
        "temporaries": analysis.temp_size_in_bytes,
        "aliased": analysis.alias_size_in_bytes,
    }
    # The compiled SPMD program is the per-device one: these are one device's bytes.
    est = formula(
        n=args.users, m=args.movies, d=args.latent_dim, c=args.chains, p=args.devices,
        t=args.segment, ordered=args.reduction == "ordered",
    )  # fmt: skip
    measured = xla["arguments"] + xla["outputs"] + xla["temporaries"] - xla["aliased"]
    print(
        json.dumps(
            {"shape": vars(args), "xla_bytes_per_device": {**xla, "total": measured},
             "formula_bytes": est, "formula_over_xla": round(est["total"] / measured, 3)},
            indent=1,
        )
    )  # fmt: skip


if __name__ == "__main__":
    main()
