"""ESS per gradient of a fixed trajectory length against ChEES, with many chains.

Runs the training job (``training.run.loop``, the fast sampler, diagonal mass matrix) on a
small synthetic problem once per trajectory setting, same data, seed and schedule, and
prints for each the effective sample size of the identifiable quantities (the
log-likelihood; the minimum and median over 50 fixed (user, movie) pair logits) per 1,000
leapfrog steps of the sampling phase (one leapfrog step = one gradient evaluation for all
chains at once), per second of sampling, and split R-hat. ESS is TFP's cross-chain
``effective_sample_size``, summed over chains.

    python bench/trajectory_length.py                        # 16 chains, 400 x 250 users/movies
    python bench/trajectory_length.py --chains 32 --fixed 10,30 --burnin 600 --results 600

ChEES (Hoffman, Radul & Sountsov 2021) estimates its criterion across chains, so it wants
many; on an accelerator extra chains cost little, on a CPU they cost linearly.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=400)
    p.add_argument("--movies", type=int, default=250)
    p.add_argument("--dim", type=int, default=4, help="latent dimension (data and model)")
    p.add_argument("--chains", type=int, default=16)
    p.add_argument("--burnin", type=int, default=500)
    p.add_argument("--results", type=int, default=500)
    p.add_argument("--fixed", default="10,30", help="fixed leapfrog counts to compare")
    p.add_argument("--chees-start", type=int, default=10, help="ChEES initial leapfrog steps")
    p.add_argument("--max-leapfrog-steps", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--devices", type=int, default=1)
    return p.parse_args(argv)


def ess_figures(result) -> dict[str, float]:
    import jax.numpy as jnp
    import numpy as np
    from tensorflow_probability.substrates import jax as tfp

    from training.run.diagnostics import pair_logits, probe_pairs

    def ess(x: np.ndarray) -> np.ndarray:
        return np.asarray(
            tfp.mcmc.effective_sample_size(jnp.asarray(x, jnp.float32), cross_chain_dims=1)
        )

    def rhat(x: np.ndarray) -> np.ndarray:
        s = x.shape[0] // 2  # split chains
        halves = np.concatenate([x[:s], x[s : 2 * s]], axis=1)
        return np.asarray(tfp.mcmc.potential_scale_reduction(jnp.asarray(halves, jnp.float32), 1))

    burn = result.config.num_burnin_steps
    loglik = result.traces["log_likelihood"][burn:]
    pairs = pair_logits(result.samples, probe_pairs(result.data.num_users, result.data.num_movies))
    pair_ess = ess(pairs)
    return {
        "loglik_ess": float(ess(loglik)),
        "pair_ess_min": float(pair_ess.min()),
        "pair_ess_median": float(np.median(pair_ess)),
        "loglik_rhat": float(rhat(loglik)),
        "pair_rhat_max": float(rhat(pairs).max()),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from training.parallel.mesh import request_cpu_devices

    request_cpu_devices(args.devices)
    import numpy as np

    from training.config import TrainConfig
    from training.data import SyntheticSpec, generate
    from training.run.loop import train

    spec = SyntheticSpec(
        num_users=args.users, num_movies=args.movies, latent_dim=args.dim, seed=args.seed
    )
    data = generate(spec)
    base = TrainConfig(
        data=f"synthetic:users={args.users},movies={args.movies},dim={args.dim}",
        num_chains=args.chains,
        num_burnin_steps=args.burnin,
        num_results=args.results,
        latent_dim=args.dim,
        step_size=0.05,
        seed=args.seed,
        devices=args.devices,
        segment_size=max(args.burnin, args.results),
        max_leapfrog_steps=args.max_leapfrog_steps,
    )
    runs = [("fixed", int(n)) for n in args.fixed.split(",") if n] + [("chees", args.chees_start)]
    print(
        f"{args.users} users x {args.movies} movies, D={args.dim}, {args.chains} chains, "
        f"{args.burnin} burn-in + {args.results} draws, {args.devices} device(s)",
        flush=True,
    )
    for trajectory, steps in runs:
        config = base.replace(trajectory=trajectory, num_leapfrog_steps=steps)
        t0 = time.perf_counter()
        result = train(config, data)
        wall = time.perf_counter() - t0
        d = result.diagnostics
        sampling = result.traces["num_leapfrog_steps"][args.burnin :]
        gradients = float(np.sum(sampling))
        sampling_s = d["run_seconds"] * gradients / max(1, d["adaptation"]["leapfrog_steps_total"])
        f = ess_figures(result)
        label = f"{trajectory}({steps})" if trajectory == "fixed" else "chees"
        print(
            f"RESULT {label:10s} L/draw {sampling.mean():6.1f}  T {d['adaptation']['trajectory_length'] or 0:.3f}"
            f"  step {d['adaptation']['step_size']:.4f}  accept {d['mean_acceptance']:.2f}"
            f"  wall {wall:6.1f} s",
            flush=True,
        )
        per_k = 1000.0 / gradients
        print(
            f"RESULT {label:10s} ESS per 1000 leapfrog: loglik {f['loglik_ess'] * per_k:7.2f}  "
            f"pairs min {f['pair_ess_min'] * per_k:7.2f} median {f['pair_ess_median'] * per_k:7.2f}"
            f"  | ESS/s loglik {f['loglik_ess'] / sampling_s:7.2f} pairs min "
            f"{f['pair_ess_min'] / sampling_s:7.2f}  | split R-hat loglik {f['loglik_rhat']:.3f} "
            f"pairs max {f['pair_rhat_max']:.3f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
