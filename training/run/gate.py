"""The publish gate: is a run converged (flag it), and did its chains move at all (refuse)?

Two checks on a run's diagnostics (`training.run.diagnostics.diagnose`):

- `assess`: the convergence verdict stored in every version's manifest. A run is
  converged when the log-likelihood's rank-normalized split R-hat, the median and the
  maximum R-hat over the fixed pair logits, and the log-likelihood's bulk ESS all meet
  `Thresholds` (defaults from Vehtari et al. 2021's advice and issue 13). An unconverged
  run is still published, flagged.
- `stuck_reasons`: a run whose chains did not move (mean acceptance below 0.05 over
  sampling, a chain that accepted nothing, non-finite draws) is not a posterior at all;
  `check_publishable` refuses it with `PublishRefused` unless forced.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from training.config import ConfigError

__all__ = [
    "MIN_ACCEPTANCE",
    "PUBLISH_REFUSED_EXIT_CODE",
    "PublishRefused",
    "Thresholds",
    "assess",
    "check_publishable",
    "stuck_reasons",
]

MIN_ACCEPTANCE = 0.05
PUBLISH_REFUSED_EXIT_CODE = 4  # distinct from 1 (unexpected), 2 (bad input), 3 (timeout)


class PublishRefused(Exception):
    """The run's chains did not move; the message says why and what to change."""


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    """What a converged run must reach (R-hat: at most; ESS: at least)."""

    loglik_rhat: float = 1.05
    pair_rhat_median: float = 1.02
    pair_rhat_max: float = 1.10
    loglik_ess_bulk: float = 200.0

    def validate(self) -> Thresholds:
        """Raise `ConfigError` for a non-finite or out-of-range threshold; return self."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            flag = "--gate-" + field.name.replace("_", "-")
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise ConfigError(f"{flag} must be a finite number, got {value!r}")
            if "rhat" in field.name and value < 1.0:
                raise ConfigError(f"{flag} must be at least 1 (R-hat is >= 1), got {value}")
            if "ess" in field.name and value < 0:
                raise ConfigError(f"{flag} must be >= 0, got {value}")
        return self

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def _figure(diagnostics: Mapping[str, Any], section: str, key: str) -> float | None:
    value = (diagnostics.get(section) or {}).get(key)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def assess(diagnostics: Mapping[str, Any], thresholds: Thresholds) -> dict[str, Any]:
    """The convergence verdict stored in a version's manifest (JSON-ready):
    `{"converged": bool, "thresholds": {...}, "figures": {...}, "failures": [str, ...]}`.

    A figure that is undefined (too few draws, one chain, constant draws) fails its check.
    """
    figures = {
        "loglik_rhat": _figure(diagnostics, "log_likelihood", "rhat"),
        "pair_rhat_median": _figure(diagnostics, "pair_logits", "rhat_median"),
        "pair_rhat_max": _figure(diagnostics, "pair_logits", "rhat_max"),
        "loglik_ess_bulk": _figure(diagnostics, "log_likelihood", "ess_bulk"),
    }
    labels = {
        "loglik_rhat": "log-likelihood split R-hat",
        "pair_rhat_median": "median pair-logit split R-hat",
        "pair_rhat_max": "maximum pair-logit split R-hat",
        "loglik_ess_bulk": "log-likelihood bulk ESS",
    }
    failures = []
    for name, value in figures.items():
        limit = getattr(thresholds, name)
        at_most = "rhat" in name
        if value is None:
            failures.append(
                f"{labels[name]} is undefined (too few draws or chains, or constant draws)"
            )
        elif (value > limit) if at_most else (value < limit):
            failures.append(f"{labels[name]} {value:.4g} {'>' if at_most else '<'} {limit:g}")
    return {
        "converged": not failures,
        "thresholds": thresholds.as_dict(),
        "figures": figures,
        "failures": failures,
    }


def stuck_reasons(diagnostics: Mapping[str, Any]) -> list[str]:
    """Why the run's chains did not move (empty when they did)."""
    reasons = []
    accept = diagnostics.get("mean_acceptance")
    if accept is None:
        reasons.append("its mean acceptance over sampling could not be computed")
    elif accept < MIN_ACCEPTANCE:
        reasons.append(f"the mean acceptance over sampling is {accept:.3g} < {MIN_ACCEPTANCE}")
    moves = diagnostics.get("moves_per_chain")
    transitions = diagnostics.get("sampling_transitions")
    if moves is not None and transitions:
        idle = [str(c) for c, m in enumerate(moves) if m == 0]
        if idle:
            reasons.append(
                f"chain{'s' if len(idle) > 1 else ''} {', '.join(idle)} accepted none of "
                f"{transitions} proposals during sampling"
            )
    non_finite = diagnostics.get("non_finite_draws")
    if non_finite:
        reasons.append(f"{non_finite} drawn values are NaN or infinite")
    return reasons


def check_publishable(diagnostics: Mapping[str, Any], *, force: bool) -> list[str]:
    """Raise `PublishRefused` when the chains did not move, unless `force`; returns the
    reasons (empty for a run that moved) so a forced publish can log them."""
    reasons = stuck_reasons(diagnostics)
    if reasons and not force:
        step = diagnostics.get("final_step_size")
        raise PublishRefused(
            "refusing to publish: the chains did not move ("
            + "; ".join(reasons)
            + f"; final step size {step if step is None else f'{step:.3g}'}). Its draws would "
            "be served as confident but meaningless intervals. Lower --step-size or let it "
            "adapt (--adaptation-share above 0, more --num-burnin-steps), check the data, "
            "then train again. To publish these draws anyway, flagged as unconverged, rerun "
            "the same command with --resume --force-publish (the checkpoint is kept)."
        )
    return reasons
