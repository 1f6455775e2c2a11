"""The publish-gate flags of `train` and `evaluate`, and checks of the numeric run flags.

Everything here runs before JAX is imported, so a bad value exits 2 before anything
compiles.
"""

from __future__ import annotations

import argparse
import math

from training.config import ConfigError
from training.run.gate import PUBLISH_REFUSED_EXIT_CODE, Thresholds
from training.run_settings import TrainingEnvironment

__all__ = ["GATE_ENV", "add_gate_arguments", "check_run_flags", "thresholds_from_args"]

# Threshold field -> (environment variable giving its default, what it bounds).
GATE_ENV = {
    "loglik_rhat": ("SHARDLENS_GATE_LOGLIK_RHAT", "largest log-likelihood split R-hat"),
    "pair_rhat_median": ("SHARDLENS_GATE_PAIR_RHAT_MEDIAN", "largest median pair-logit R-hat"),
    "pair_rhat_max": ("SHARDLENS_GATE_PAIR_RHAT_MAX", "largest pair-logit R-hat"),
    "loglik_ess_bulk": ("SHARDLENS_GATE_LOGLIK_ESS_BULK", "smallest log-likelihood bulk ESS"),
}


def add_gate_arguments(p: argparse.ArgumentParser) -> None:
    """`--force-publish` and one `--gate-*` flag per convergence threshold."""
    g = p.add_argument_group(
        "publish gate",
        "Every version records whether it converged by these thresholds (it is published "
        "either way, flagged). A run whose chains did not move is refused (exit code "
        f"{PUBLISH_REFUSED_EXIT_CODE}) unless --force-publish is given.",
    )
    g.add_argument(
        "--force-publish",
        action="store_true",
        help="publish even a run whose chains did not move (acceptance below 0.05, a chain "
        "that accepted nothing, non-finite draws); it is flagged as unconverged",
    )
    defaults = Thresholds()
    environment = TrainingEnvironment()  # SHARDLENS_GATE_* from the environment or .env
    for field, (env, what) in GATE_ENV.items():
        default = getattr(defaults, field)
        g.add_argument(
            "--gate-" + field.replace("_", "-"),
            dest="gate_" + field,
            type=float,
            # A string default goes through `type` too: a bad variable exits 2 by name.
            default=getattr(environment, "gate_" + field) or default,
            metavar="X",
            help=f"{what} of a converged run (env {env}; default {default:g})",
        )


def thresholds_from_args(args: argparse.Namespace) -> Thresholds:
    """The convergence thresholds from the `--gate-*` flags; `ConfigError` when one is not
    finite or out of range."""
    return Thresholds(**{field: getattr(args, "gate_" + field) for field in GATE_ENV}).validate()


def check_run_flags(args: argparse.Namespace) -> None:
    """`ConfigError` for a numeric run flag outside `TrainConfig` that is not finite or is
    out of range (the config's own fields are checked by `TrainConfig.validate`)."""
    timeout = args.segment_timeout
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise ConfigError(f"--segment-timeout must be a positive number of seconds, got {timeout}")
    if args.stop_after is not None and args.stop_after < 1:
        raise ConfigError(f"--stop-after must be at least 1, got {args.stop_after}")
    holdout = getattr(args, "holdout", None)  # `evaluate` only
    if holdout is not None and not 0.0 < holdout < 1.0:
        raise ConfigError(f"--holdout must be between 0 and 1 (exclusive), got {holdout}")
    thresholds_from_args(args)
