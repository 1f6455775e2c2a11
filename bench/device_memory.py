"""Per-device memory of one compiled HMC segment, from XLA, next to the README's formula.

    python bench/device_memory.py [--users 6040 --movies 3706 --latent-dim 20 --chains 2
        --devices 8 --segment 20 --reduction psum --likelihood fast]

Compiles (does not run) the segment program on fake CPU devices and prints XLA's memory
analysis per device (arguments, outputs, temporaries) and the formula's estimate
(`training.run.memory.device_bytes`, the one training checks before it compiles). The
device count P only changes the user block L = ceil(N / P), so the figure is what one
device of a P-device mesh needs, whether those devices sit on one host or many.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


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
    ap.add_argument("--likelihood", default="fast", choices=("fast", "reference"))
    args = ap.parse_args()

    from training.parallel.mesh import request_cpu_devices

    request_cpu_devices(args.devices)
    from training.config import TrainConfig
    from training.data import SyntheticSpec, generate
    from training.parallel.mesh import make_mesh
    from training.run.memory import device_bytes
    from training.run.segments import Segments, prepare

    data = generate(
        SyntheticSpec(num_users=args.users, num_movies=args.movies, latent_dim=2, seed=0)
    )
    config = TrainConfig(
        data="synthetic", num_chains=args.chains, latent_dim=args.latent_dim,
        devices=args.devices, segment_size=args.segment, num_leapfrog_steps=args.leapfrog,
        num_burnin_steps=0, num_results=args.segment, reduction=args.reduction,
        likelihood=args.likelihood,
    )  # fmt: skip
    mesh = make_mesh(args.devices)
    segments = Segments(config, prepare(data, num_devices=args.devices), mesh)
    state, results = segments.init()
    segments.compile(state, results, args.segment)
    xla = segments.program.memory_analysis(args.segment) or {}
    # The compiled SPMD program is the per-device one: these are one device's bytes.
    est = device_bytes(
        n=args.users, m=args.movies, d=args.latent_dim, c=args.chains, p=args.devices,
        t=args.segment, likelihood=args.likelihood, ordered=args.reduction == "ordered",
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
