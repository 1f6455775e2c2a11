"""What `python -m training train` prints once a version is published (text or JSON)."""

from __future__ import annotations

from typing import Any

__all__ = ["format_diagnostics", "run_summary"]


def run_summary(version: str, result: Any, convergence: dict[str, Any]) -> dict[str, Any]:
    """The `--json` summary: version, data, config, shapes, diagnostics and the verdict.
    `result` is a `training.run.loop.TrainResult`."""
    return {
        "version": version,
        "data": result.data.source,
        "users": result.data.num_users,
        "movies": result.data.num_movies,
        "config": result.config.as_dict(),
        "shapes": {k: list(v.shape) for k, v in result.samples.items()},
        "diagnostics": result.diagnostics,
        "convergence": convergence,
    }


def _g(value: Any, spec: str = ".4g") -> str:
    return "n/a" if value is None else format(value, spec)


def format_diagnostics(d: dict[str, Any], convergence: dict[str, Any]) -> str:
    """A few lines for the console: acceptance, step size, R-hat, ESS, the verdict."""
    ll = d.get("log_likelihood") or {}
    pl = d.get("pair_logits") or {}
    div = d.get("divergences") or {}
    per_chain = ", ".join(_g(a, ".2f") for a in d.get("acceptance_per_chain") or [])
    lines = [
        f"  acceptance {_g(d.get('mean_acceptance'), '.3f')} (per chain {per_chain or 'n/a'})  "
        f"divergences {div.get('sampling', 'n/a')}  step size {_g(d.get('final_step_size'))}  "
        f"mass matrix {(d.get('mass_matrix') or {}).get('kind', 'n/a')}",
        f"  leapfrog/s {_g(d.get('leapfrog_per_s'))}  wall {_g(d.get('wall_seconds'), '.1f')} s",
        f"  log-likelihood: split R-hat {_g(ll.get('rhat'))}  bulk ESS {_g(ll.get('ess_bulk'))}"
        f"  tail ESS {_g(ll.get('ess_tail'))}",
        f"  {pl.get('num_pairs', 0)} pair logits: split R-hat median {_g(pl.get('rhat_median'))}"
        f" max {_g(pl.get('rhat_max'))}  bulk ESS min {_g(pl.get('ess_bulk_min'))}"
        f"  tail ESS min {_g(pl.get('ess_tail_min'))}"
        f"  watch-probability MCSE max {_g(pl.get('probability_mcse_max'))}",
    ]
    if d.get("errors"):
        lines.append("  diagnostics errors: " + "; ".join(d["errors"]))
    if convergence["converged"]:
        lines.append("  converged: every convergence threshold is met")
    else:
        lines.append("  NOT CONVERGED (published, flagged): " + "; ".join(convergence["failures"]))
    return "\n".join(lines)
