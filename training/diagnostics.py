"""Convergence diagnostics on identifiable quantities, returned as data (never raised).

Raw embeddings are identified only up to rotation, so R-hat and ESS are computed on the
total log-likelihood of each draw and on the logits of a fixed, seeded set of (user, movie)
pairs, with TFP's `effective_sample_size` and `potential_scale_reduction`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorflow_probability.substrates import jax as tfp

from training.config import TrainConfig
from training.data import WatchData

NUM_PAIRS = 50
PAIR_SEED = 20240521


def probe_pairs(num_users: int, num_movies: int, *, count: int = NUM_PAIRS) -> np.ndarray:
    """A fixed, seeded set of (user, movie) index pairs, int64 [count, 2]."""
    rng = np.random.default_rng(PAIR_SEED)
    return np.stack(
        [rng.integers(num_users, size=count), rng.integers(num_movies, size=count)], axis=1
    )


def pair_logits(samples: dict[str, np.ndarray], pairs: np.ndarray) -> np.ndarray:
    """Logits U_i . V_j + u_i + v_j of `pairs` for every draw, [S, C, pairs]."""
    i, j = pairs[:, 0], pairs[:, 1]
    u = samples["user_embeddings"][:, :, i]
    v = samples["movie_embeddings"][:, :, j]
    return (u * v).sum(-1) + samples["user_bias"][:, :, i] + samples["movie_bias"][:, :, j]


def _stats(x: np.ndarray) -> dict[str, Any]:
    """ESS (summed over chains, cross-chain when C > 1) and R-hat of x [S, C, ...]."""
    chains = x.shape[1]
    out: dict[str, Any] = {"ess": None, "rhat": None}
    if x.shape[0] < 4:
        return out
    ess = tfp.mcmc.effective_sample_size(x, cross_chain_dims=1 if chains > 1 else None)
    ess = np.asarray(ess)
    if chains == 1:
        ess = ess[0] if ess.ndim and ess.shape[0] == 1 else ess
    out["ess"] = ess
    if chains > 1:
        out["rhat"] = np.asarray(tfp.mcmc.potential_scale_reduction(x, independent_chain_ndims=1))
    return out


def _finite(x: Any) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def diagnose(
    *,
    samples: dict[str, np.ndarray],
    traces: dict[str, np.ndarray],
    data: WatchData,
    config: TrainConfig,
    run_seconds: float,
    run_iterations: int,
    compile_seconds: float,
    wall_seconds: float,
) -> dict[str, Any]:
    """A JSON-ready dict of acceptance, step size, R-hat, ESS and throughput."""
    out: dict[str, Any] = {}
    try:
        burn = config.num_burnin_steps
        # A NaN log accept ratio (a divergent proposal) is a rejection: acceptance 0.
        accept = np.nan_to_num(np.exp(np.minimum(traces["log_accept_ratio"], 0.0)), nan=0.0)
        out["mean_acceptance"] = _finite(accept[burn:].mean())
        out["mean_acceptance_burnin"] = _finite(accept[:burn].mean()) if burn else None
        out["final_step_size"] = _finite(traces["step_size"][-1])
        out["leapfrog_per_s"] = (
            _finite(run_iterations * config.num_leapfrog_steps / run_seconds)
            if run_seconds > 0
            else None
        )
        out["run_seconds"] = run_seconds
        out["compile_seconds"] = compile_seconds
        out["wall_seconds"] = wall_seconds
        out["num_draws"], out["num_chains"] = samples["user_bias"].shape[:2]
        loglik = traces["log_likelihood"][burn:]
        ll = _stats(loglik.astype(np.float32))
        out["log_likelihood"] = {
            "mean": _finite(loglik.mean()),
            "ess": None if ll["ess"] is None else _finite(np.asarray(ll["ess"]).reshape(-1)[0]),
            "rhat": None if ll["rhat"] is None else _finite(ll["rhat"]),
        }
        pairs = probe_pairs(data.num_users, data.num_movies)
        pl = _stats(pair_logits(samples, pairs).astype(np.float32))
        out["pair_logits"] = {
            "num_pairs": len(pairs),
            "ess_min": None if pl["ess"] is None else _finite(np.min(pl["ess"])),
            "ess_median": None if pl["ess"] is None else _finite(np.median(pl["ess"])),
            "rhat_max": None if pl["rhat"] is None else _finite(np.max(pl["rhat"])),
            "rhat_median": None if pl["rhat"] is None else _finite(np.median(pl["rhat"])),
        }
    except Exception as e:  # diagnostics must never fail a run that produced samples
        out["error"] = f"{type(e).__name__}: {e}"
    return out
