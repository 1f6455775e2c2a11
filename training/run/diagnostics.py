"""Convergence diagnostics on identifiable quantities, returned as data (never raised).

Raw embeddings are identified only up to rotation, so R-hat and ESS are computed on the
total log-likelihood of each draw and on the logits of a fixed, seeded set of (user, movie)
pairs. The figures are those of Vehtari, Gelman, Simpson, Carpenter and Bürkner (2021),
"Rank-normalization, folding, and localization: an improved R-hat for assessing
convergence of MCMC", as ArviZ computes them (`arviz-stats`, numpy array interface):
rank-normalized split R-hat (the larger of the bulk and the folded-tail value), bulk ESS
and tail ESS (the smaller ESS of the 5% and 95% quantiles). ESS figures are totals over
all chains. Divergent transitions follow Stan: an energy error above 1,000 (or a
non-finite one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from arviz_stats.base import array_stats

from training.config import TrainConfig
from training.data import WatchData

__all__ = [
    "DIVERGENCE_ENERGY",
    "NUM_PAIRS",
    "TAIL_PROBS",
    "acceptance",
    "chain_stats",
    "diagnose",
    "divergent",
    "mass_matrix_summary",
    "moves_per_chain",
    "pair_logits",
    "probe_pairs",
]

NUM_PAIRS = 50
PAIR_SEED = 20240521
DIVERGENCE_ENERGY = 1000.0  # Stan's max_deltaH
TAIL_PROBS = (0.05, 0.95)  # tail ESS: the smaller ESS of these two quantiles


def probe_pairs(num_users: int, num_movies: int, *, count: int = NUM_PAIRS) -> np.ndarray:
    """A fixed, seeded set of (user, movie) index pairs, int64 [count, 2]."""
    rng = np.random.default_rng(PAIR_SEED)
    return np.stack(
        [rng.integers(num_users, size=count), rng.integers(num_movies, size=count)], axis=1
    )


def pair_logits(samples: Mapping[str, np.ndarray], pairs: np.ndarray) -> np.ndarray:
    """Logits U_i . V_j + u_i + v_j of `pairs` for every draw, [S, C, pairs]."""
    i, j = pairs[:, 0], pairs[:, 1]
    u = samples["user_embeddings"][:, :, i]
    v = samples["movie_embeddings"][:, :, j]
    return (u * v).sum(-1) + samples["user_bias"][:, :, i] + samples["movie_bias"][:, :, j]


def chain_stats(draws: np.ndarray) -> dict[str, np.ndarray]:
    """Rank-normalized split R-hat, bulk ESS and tail ESS of `draws` [S, C, ...].

    Returns arrays of the trailing shape (float64; NaN where undefined: fewer than 4
    draws, one chain for R-hat, constant or non-finite draws). ESS is the total over
    chains. Computed by `arviz_stats.base.array_stats` (Vehtari et al. 2021).
    """
    x = np.asarray(draws, dtype=np.float64)
    axes = {"chain_axis": 1, "draw_axis": 0}
    with np.errstate(all="ignore"):
        return {
            "rhat": np.asarray(array_stats.rhat(x, method="rank", **axes)),
            "ess_bulk": np.asarray(array_stats.ess(x, method="bulk", **axes)),
            "ess_tail": np.asarray(array_stats.ess(x, method="tail", prob=TAIL_PROBS, **axes)),
        }


def acceptance(log_accept_ratio: np.ndarray) -> np.ndarray:
    """Metropolis acceptance probability min(1, exp(log ratio)) per iteration and chain.

    A NaN log ratio (a divergent proposal) is a rejection: probability 0.
    """
    with np.errstate(all="ignore"):
        return np.nan_to_num(np.exp(np.minimum(log_accept_ratio, 0.0)), nan=0.0)


def divergent(log_accept_ratio: np.ndarray) -> np.ndarray:
    """Divergent transitions, bool like `log_accept_ratio`: energy error H(proposal) -
    H(current) above `DIVERGENCE_ENERGY`, or not finite (Stan's definition)."""
    lar = np.asarray(log_accept_ratio, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(lar) | (-lar > DIVERGENCE_ENERGY)


def moves_per_chain(target_log_prob: np.ndarray, *, start: int) -> tuple[np.ndarray, int]:
    """(transitions that changed the state [C], transitions looked at) from iteration
    `start` on.

    `target_log_prob` [T, C] is the log density of each iteration's state: a rejected
    proposal keeps it bit for bit, an accepted one changes it (almost surely).
    """
    tlp = np.asarray(target_log_prob)
    first = max(start, 1)
    if first >= tlp.shape[0]:
        return np.zeros(tlp.shape[1:], np.int64), 0
    changed = tlp[first:] != tlp[first - 1 : -1]
    return changed.sum(axis=0).astype(np.int64), int(changed.shape[0])


def mass_matrix_summary(inverse_mass_matrix: Mapping[str, Any] | None) -> dict[str, Any]:
    """Summary of a diagonal inverse mass matrix (per state part: min, median and max of its
    elements, i.e. of the adapted posterior variances); `{"kind": "identity"}` for None."""
    if inverse_mass_matrix is None:
        return {"kind": "identity"}
    parts: dict[str, Any] = {}
    values = []
    for name, part in inverse_mass_matrix.items():
        x = np.asarray(part, dtype=np.float64).ravel()
        x = x[np.isfinite(x)]
        values.append(x)
        parts[name] = (
            {"min": float(x.min()), "median": float(np.median(x)), "max": float(x.max())}
            if x.size
            else None
        )
    every = np.concatenate(values) if values else np.empty(0)
    positive = every[every > 0]
    return {
        "kind": "diagonal",
        "parts": parts,
        "ratio_max_min": float(positive.max() / positive.min()) if positive.size else None,
    }


def _finite(x: Any) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def _leapfrog_steps(
    traces: Mapping[str, np.ndarray], config: TrainConfig, run_iterations: int
) -> int:
    """Leapfrog steps of the last `run_iterations` iterations (this process's run): from the
    `num_leapfrog_steps` trace (ChEES varies it), else the configured count."""
    if "num_leapfrog_steps" in traces and run_iterations > 0:
        return int(np.sum(np.asarray(traces["num_leapfrog_steps"])[-run_iterations:]))
    return run_iterations * config.num_leapfrog_steps


def _summary(values: np.ndarray, reduce: Callable[[np.ndarray], Any]) -> float | None:
    """`reduce(values)`, None when any value is undefined (NaN or infinite)."""
    v = np.asarray(values, dtype=np.float64)
    return _finite(reduce(v)) if v.size and np.isfinite(v).all() else None


def _sampling_figures(
    traces: Mapping[str, np.ndarray], burn: int, samples: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    """Acceptance (overall and per chain), moves, divergences, non-finite draws."""
    accept = acceptance(traces["log_accept_ratio"])
    div = divergent(traces["log_accept_ratio"])
    moved, transitions = moves_per_chain(traces["target_log_prob"], start=burn)
    non_finite = sum(int(x.size - np.count_nonzero(np.isfinite(x))) for x in samples.values())
    return {
        "mean_acceptance": _finite(accept[burn:].mean()) if accept.shape[0] > burn else None,
        "mean_acceptance_burnin": _finite(accept[:burn].mean()) if burn else None,
        "acceptance_per_chain": [_finite(a) for a in accept[burn:].mean(axis=0)]
        if accept.shape[0] > burn
        else None,
        "moves_per_chain": moved.tolist(),
        "sampling_transitions": transitions,
        "divergences": {
            "energy_threshold": DIVERGENCE_ENERGY,
            "sampling": int(div[burn:].sum()),
            "burnin": int(div[:burn].sum()),
            "sampling_per_chain": div[burn:].sum(axis=0).astype(int).tolist(),
        },
        "non_finite_draws": non_finite,
    }


def _log_likelihood_figures(loglik: np.ndarray) -> dict[str, Any]:
    stats = chain_stats(loglik)
    return {
        "mean": _finite(np.mean(loglik)),
        "rhat": _finite(stats["rhat"]),
        "ess_bulk": _finite(stats["ess_bulk"]),
        "ess_tail": _finite(stats["ess_tail"]),
    }


def _pair_figures(samples: Mapping[str, np.ndarray], data: WatchData) -> dict[str, Any]:
    pairs = probe_pairs(data.num_users, data.num_movies)
    logits = pair_logits(samples, pairs).astype(np.float64)
    stats = chain_stats(logits)
    with np.errstate(over="ignore"):
        probability = 1.0 / (1.0 + np.exp(-logits))
    with np.errstate(all="ignore"):
        mcse = np.asarray(array_stats.mcse(probability, chain_axis=1, draw_axis=0, method="mean"))
    return {
        "num_pairs": len(pairs),
        "rhat_max": _summary(stats["rhat"], np.max),
        "rhat_median": _summary(stats["rhat"], np.median),
        "ess_bulk_min": _summary(stats["ess_bulk"], np.min),
        "ess_bulk_median": _summary(stats["ess_bulk"], np.median),
        "ess_tail_min": _summary(stats["ess_tail"], np.min),
        "ess_tail_median": _summary(stats["ess_tail"], np.median),
        "probability_mcse_max": _summary(mcse, np.max),
        "probability_mcse_median": _summary(mcse, np.median),
        "per_pair": {
            "user_index": pairs[:, 0].tolist(),
            "movie_index": pairs[:, 1].tolist(),
            "rhat": [_finite(x) for x in stats["rhat"]],
            "ess_bulk": [_finite(x) for x in stats["ess_bulk"]],
            "ess_tail": [_finite(x) for x in stats["ess_tail"]],
            "probability_mean": [_finite(x) for x in probability.mean(axis=(0, 1))],
            "probability_mcse": [_finite(x) for x in mcse],
        },
    }


def diagnose(
    *,
    samples: Mapping[str, np.ndarray],
    traces: Mapping[str, np.ndarray],
    data: WatchData,
    config: TrainConfig,
    run_seconds: float,
    run_iterations: int,
    compile_seconds: float,
    wall_seconds: float,
    inverse_mass_matrix: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A JSON-ready dict of the run's diagnostics.

    `samples` are the kept draws in reference shapes [S, C, ...]; `traces` hold
    `log_accept_ratio`, `target_log_prob`, `log_likelihood` [T, C] and `step_size` [T] over
    all T = burn-in + S iterations. `inverse_mass_matrix` maps state part names to the
    adapted diagonal (None: the identity). Keys: acceptance (sampling, burn-in, per chain),
    moves and divergences per chain, non-finite draws, final step size, mass matrix,
    throughput, `log_likelihood` (mean, R-hat, bulk and tail ESS) and `pair_logits` (the
    same over 50 fixed pairs, plus the MCSE of their posterior-mean watch probabilities).
    A section that cannot be computed is reported under `errors`; nothing is raised.
    """
    burn = config.num_burnin_steps
    out: dict[str, Any] = {
        "run_seconds": run_seconds,
        "compile_seconds": compile_seconds,
        "wall_seconds": wall_seconds,
        "leapfrog_per_s": (
            _finite(_leapfrog_steps(traces, config, run_iterations) / run_seconds)
            if run_seconds > 0
            else None
        ),
        "num_draws": int(samples["user_bias"].shape[0]),
        "num_chains": int(samples["user_bias"].shape[1]),
    }
    errors: list[str] = []
    sections: list[tuple[str, Callable[[], Any]]] = [
        ("sampling", lambda: out.update(_sampling_figures(traces, burn, samples))),
        ("final_step_size", lambda: _finite(np.asarray(traces["step_size"])[-1])),
        ("mass_matrix", lambda: mass_matrix_summary(inverse_mass_matrix)),
        (
            "log_likelihood",
            lambda: _log_likelihood_figures(np.asarray(traces["log_likelihood"])[burn:]),
        ),
        ("pair_logits", lambda: _pair_figures(samples, data)),
    ]
    for name, compute in sections:
        try:  # diagnostics must never fail a run that produced samples
            value = compute()
            if name != "sampling":
                out[name] = value
        except Exception as e:
            errors.append(f"{name}: {type(e).__name__}: {e}")
    if errors:
        out["errors"] = errors
    return out
