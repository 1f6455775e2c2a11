"""Leapfrog steps per second of the sharded HMC at a given shape (default: full ml-1m).

    python bench/train_throughput.py [--users 6040 --movies 3706 --latent-dim 20 --chains 2
        --devices 1 --leapfrog 10 --iterations 6 --segment 2 --likelihood reference
        --matmul-precision tensorfloat32]

Prints compile time and leapfrog steps/s over the segments after the first compile
(the reference notebook's unit: iterations x leapfrog steps per second, all chains together).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--users", type=int, default=6040)
    p.add_argument("--movies", type=int, default=3706)
    p.add_argument("--latent-dim", type=int, default=20)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--devices", type=int, default=1)
    p.add_argument("--leapfrog", type=int, default=10)
    p.add_argument("--iterations", type=int, default=6)
    p.add_argument("--segment", type=int, default=2)
    p.add_argument("--likelihood", default="reference")
    p.add_argument("--matmul-precision", default="tensorfloat32")
    args = p.parse_args()

    from training.mesh import request_cpu_devices

    if args.devices > 1:
        request_cpu_devices(args.devices)
    from training.config import TrainConfig
    from training.data import SyntheticSpec, generate
    from training.train import train

    data = generate(SyntheticSpec(num_users=args.users, num_movies=args.movies, latent_dim=4))
    config = TrainConfig(
        data=f"synthetic:users={args.users},movies={args.movies}",
        num_chains=args.chains,
        num_leapfrog_steps=args.leapfrog,
        step_size=1e-2,
        num_burnin_steps=args.iterations - args.segment,
        num_results=args.segment,
        latent_dim=args.latent_dim,
        devices=args.devices,
        segment_size=args.segment,
        likelihood=args.likelihood,
        matmul_precision=args.matmul_precision,
    )
    rates: list[float] = []

    def progress(payload: dict) -> None:
        if payload["leapfrog_per_s"] is not None:
            rates.append(payload["leapfrog_per_s"])
            print(f"  iteration {payload['iteration']}: {payload['leapfrog_per_s']:.2f} leapfrog/s")

    t0 = time.perf_counter()
    result = train(config, data, progress=progress)
    assert result is not None
    d = result.diagnostics
    print(
        json.dumps(
            {
                "shape": [args.users, args.movies, args.latent_dim],
                "chains": args.chains,
                "devices": args.devices,
                "likelihood": args.likelihood,
                "compile_s": round(d["compile_seconds"], 2),
                "leapfrog_per_s_all": round(d["leapfrog_per_s"], 3),
                "leapfrog_per_s_after_first_segment": round(
                    sum(rates[1:]) / max(1, len(rates) - 1), 3
                ),
                "wall_s": round(time.perf_counter() - t0, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
