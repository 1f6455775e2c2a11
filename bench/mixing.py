"""Mixing: ESS per second and per 1,000 gradients, identity vs adapted mass matrix, and NumPyro.

On synthetic data of ml-1m's shape (6040 users x 3706 movies, about 4.5% dense; `--scale`
shrinks both sides), runs the training job's fast sampler twice in the same process, same
data, seed and schedule, once with `--mass-matrix identity` (step size adapted only) and
once with `diagonal` (Stan's windowed diagonal adaptation), then NumPyro's
`HMC(adapt_mass_matrix=True)` (diagonal, Stan-style windows) with the same number of leapfrog
steps per iteration on the same model (Gaussian priors, Bernoulli-logit likelihood) and data.

For each it prints the bulk ESS (rank-normalized, total over chains, `arviz-stats` through
`training.run.diagnostics.chain_stats`) of the log-likelihood and the minimum and median over
the 50 fixed pair logits, per 1,000 gradient evaluations of the sampling phase (one leapfrog
step of all chains) and per second of sampling, split R-hat, the final step size, and the
ratio diagonal / identity. Per-gradient figures do not depend on the machine's load; per
second figures do (the load average is printed with each row). The project's sampling
seconds are its run time scaled by the sampling share of its leapfrog steps; NumPyro's are
the wall time of `MCMC.run` after `MCMC.warmup`, which includes compiling its sampling loop.

NumPyro is in the `bench` extra (`scripts/setup bench`). At full scale it needs hours on
2 cores: give it a shorter schedule (`--numpyro-burnin`, `--numpyro-results`) and compare
per gradient.

    python bench/mixing.py --scale 0.1                         # about 600 x 370, minutes
    python bench/mixing.py --burnin 300 --results 200 --numpyro-burnin 150 --numpyro-results 100
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ML1M_USERS, ML1M_MOVIES = 6040, 3706


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=1.0, help="fraction of ml-1m's users/movies")
    p.add_argument("--dim", type=int, default=20, help="model latent dimension D")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--leapfrog", type=int, default=10, help="leapfrog steps per iteration")
    p.add_argument("--step-size", type=float, default=0.01, help="initial step size")
    p.add_argument("--burnin", type=int, default=300)
    p.add_argument("--results", type=int, default=200)
    p.add_argument("--numpyro-burnin", type=int, default=None, help="default: --burnin")
    p.add_argument("--numpyro-results", type=int, default=None, help="default: --results")
    p.add_argument("--no-numpyro", action="store_true", help="skip the NumPyro row")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not 0 < args.scale <= 1:
        p.error("--scale must be in (0, 1]")
    return args


def load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def figures(loglik: Any, pair: Any, gradients: float, seconds: float) -> dict[str, float]:
    """ESS per 1,000 gradients and per second, and split R-hat, from [S, C(, K)] draws."""
    import numpy as np

    from training.run.diagnostics import chain_stats

    ll, pp = chain_stats(loglik), chain_stats(pair)
    ess = {
        "loglik": float(ll["ess_bulk"]),
        "pair_min": float(np.min(pp["ess_bulk"])),
        "pair_median": float(np.median(pp["ess_bulk"])),
    }
    out = {f"{k}_per_k": v * 1000.0 / gradients for k, v in ess.items()}
    out |= {f"{k}_per_s": v / seconds for k, v in ess.items()}
    out |= {"loglik_rhat": float(ll["rhat"]), "pair_rhat_max": float(np.max(pp["rhat"]))}
    return out | {"gradients": gradients, "seconds": seconds}


def run_project(config: Any, data: Any, pairs: Any) -> dict[str, float]:
    """The training job's sampler; figures over its sampling phase."""
    import numpy as np

    from training.run.diagnostics import pair_logits
    from training.run.loop import train

    result = train(config, data)
    assert result is not None
    burn = config.num_burnin_steps
    steps = result.traces["num_leapfrog_steps"]
    gradients = float(np.sum(steps[burn:]))
    seconds = result.diagnostics["run_seconds"] * gradients / float(np.sum(steps))
    out = figures(
        result.traces["log_likelihood"][burn:],
        pair_logits(result.samples, pairs),
        gradients,
        seconds,
    )
    return out | {"step_size": float(result.diagnostics["final_step_size"])}


def run_numpyro(config: Any, data: Any, pairs: Any, burnin: int, results: int) -> dict[str, float]:
    """NumPyro's HMC with a diagonal adapted mass matrix, vectorized chains, fixed steps."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import HMC, MCMC, init_to_sample

    from training.run.diagnostics import pair_logits

    watch = jnp.asarray(data.dense(np.float32))
    n, m, d, s = data.num_users, data.num_movies, config.latent_dim, config.prior_scale

    def model(watch: jax.Array) -> None:
        normal = dist.Normal(0.0, s)
        uu = numpyro.sample("user_embeddings", normal.expand([n, d]).to_event(2))
        ub = numpyro.sample("user_bias", normal.expand([n]).to_event(1))
        vv = numpyro.sample("movie_embeddings", normal.expand([m, d]).to_event(2))
        vb = numpyro.sample("movie_bias", normal.expand([m]).to_event(1))
        z = uu @ vv.T + ub[:, None] + vb[None, :]
        numpyro.factor("log_likelihood", jnp.sum(watch * z - jax.nn.softplus(z)))

    kernel = HMC(
        model,
        step_size=config.step_size,
        num_steps=config.num_leapfrog_steps,
        # None, not the default 2 pi: with both set NumPyro fixes step = length / steps
        # and cannot adapt the step size (it warns).
        trajectory_length=None,
        adapt_step_size=True,
        adapt_mass_matrix=True,
        dense_mass=False,
        target_accept_prob=config.target_accept_prob,
        init_strategy=init_to_sample,
    )
    mcmc = MCMC(
        kernel,
        num_warmup=burnin,
        num_samples=results,
        num_chains=config.num_chains,
        chain_method="vectorized",
        progress_bar=False,
    )
    key = jax.random.PRNGKey(config.seed)
    mcmc.warmup(key, watch)
    t0 = time.perf_counter()
    mcmc.run(mcmc.post_warmup_state.rng_key, watch)
    draws = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
    seconds = time.perf_counter() - t0
    # [C, S, ...] -> [S, C, ...] as the project's samples
    samples = {k: np.swapaxes(np.asarray(v), 0, 1) for k, v in draws.items()}

    @jax.jit
    def loglik(uu: jax.Array, ub: jax.Array, vv: jax.Array, vb: jax.Array) -> jax.Array:
        z = uu @ vv.T + ub[:, None] + vb[None, :]
        return jnp.sum(watch * z - jax.nn.softplus(z))

    parts = [samples[k] for k in ("user_embeddings", "user_bias", "movie_embeddings", "movie_bias")]
    ll = np.array(
        [
            [float(loglik(*(p[i, c] for p in parts))) for c in range(config.num_chains)]
            for i in range(results)
        ]
    )
    gradients = float(results * config.num_leapfrog_steps)
    out = figures(ll, pair_logits(samples, pairs), gradients, seconds)
    step = mcmc.last_state.adapt_state.step_size
    return out | {"step_size": float(np.mean(np.asarray(step)))}


def row(label: str, f: dict[str, float]) -> str:
    return (
        f"{label:22s} {f['loglik_per_k']:8.2f} {f['pair_min_per_k']:8.2f} "
        f"{f['pair_median_per_k']:8.2f} | {f['loglik_per_s']:7.3f} {f['pair_min_per_s']:7.3f} "
        f"{f['pair_median_per_s']:7.3f} | {f['loglik_rhat']:6.3f} {f['pair_rhat_max']:6.3f} | "
        f"{f['step_size']:.3g} {f['gradients']:7.0f} {f['seconds']:7.1f} | {load()}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from training.config import TrainConfig
    from training.data import SyntheticSpec, generate
    from training.run.diagnostics import probe_pairs

    users = max(2, round(ML1M_USERS * args.scale))
    movies = max(2, round(ML1M_MOVIES * args.scale))
    # The generator's default biases give about 4.5% density (ml-1m: 4.47%).
    data = generate(SyntheticSpec(num_users=users, num_movies=movies, seed=args.seed))
    pairs = probe_pairs(users, movies)
    config = TrainConfig(
        data=f"synthetic:users={users},movies={movies},seed={args.seed}",
        num_chains=args.chains,
        num_leapfrog_steps=args.leapfrog,
        step_size=args.step_size,
        num_burnin_steps=args.burnin,
        num_results=args.results,
        latent_dim=args.dim,
        seed=args.seed,
        segment_size=max(args.burnin, args.results, 1),
    )
    print(
        f"{users} users x {movies} movies (density {data.density:.4f}), D={args.dim}, "
        f"{args.chains} chains, {args.leapfrog} leapfrog steps per iteration, "
        f"{args.burnin} burn-in + {args.results} draws; {load()}",
        flush=True,
    )
    header = (
        f"{'run':22s} {'ESS per 1000 gradients':>26s} | {'ESS per second':>23s} | "
        f"{'split R-hat':>13s} | step   grads  seconds\n"
        f"{'':22s} {'loglik':>8s} {'pairmin':>8s} {'pairmed':>8s} | {'loglik':>7s} "
        f"{'pairmin':>7s} {'pairmed':>7s} | {'loglik':>6s} {'pairmx':>6s} |"
    )
    rows: dict[str, dict[str, float]] = {}
    print(header, flush=True)
    for mass in ("identity", "diagonal"):
        rows[mass] = run_project(config.replace(mass_matrix=mass), data, pairs)
        print(row("shardlens " + mass, rows[mass]), flush=True)
    ratio = {k: rows["diagonal"][k] / rows["identity"][k] for k in rows["diagonal"] if "_per_" in k}
    print(
        "RATIO diagonal / identity: per gradient loglik {loglik_per_k:.2f} pair min "
        "{pair_min_per_k:.2f} pair median {pair_median_per_k:.2f}; per second loglik "
        "{loglik_per_s:.2f} pair min {pair_min_per_s:.2f} pair median {pair_median_per_s:.2f}".format(
            **ratio
        ),
        flush=True,
    )
    if not args.no_numpyro:
        burnin = args.numpyro_burnin if args.numpyro_burnin is not None else args.burnin
        results = args.numpyro_results if args.numpyro_results is not None else args.results
        f = run_numpyro(config, data, pairs, burnin, results)
        print(row(f"numpyro {burnin}+{results}", f), flush=True)
        print(
            "RATIO shardlens diagonal / numpyro: per gradient loglik "
            f"{rows['diagonal']['loglik_per_k'] / f['loglik_per_k']:.2f} pair min "
            f"{rows['diagonal']['pair_min_per_k'] / f['pair_min_per_k']:.2f}; per second loglik "
            f"{rows['diagonal']['loglik_per_s'] / f['loglik_per_s']:.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
