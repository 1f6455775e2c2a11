"""Command-line flags of the warmup adaptation (`training.hmc.adaptation`), kept free of JAX.

Each flag overrides the `TrainConfig` field of the same name; unset flags keep the preset's
value. `TrainConfig.validate` checks them (exit code 2 with the flag named).
"""

from __future__ import annotations

import argparse

from training.config import MASS_MATRICES, TRAJECTORIES

__all__ = ["ADAPTATION_OVERRIDES", "add_adaptation_arguments"]

# CLI flag (argparse dest) -> TrainConfig field.
ADAPTATION_OVERRIDES = {
    name: name
    for name in (
        "mass_matrix",
        "adapt_init_buffer",
        "adapt_window",
        "adapt_term_buffer",
        "target_accept_prob",
        "step_size_jitter",
        "trajectory",
        "max_leapfrog_steps",
        "warm_start_steps",
        "warm_start_learning_rate",
    )
}


def add_adaptation_arguments(p: argparse.ArgumentParser) -> None:
    """The warmup adaptation flags (a group of `train` and `evaluate`)."""
    g = p.add_argument_group(
        "warmup adaptation",
        "Over the adapting share of burn-in, Stan's windowed schedule tunes the step size "
        "(dual averaging) and the mass matrix; see docs/ADAPTATION.md.",
    )
    g.add_argument(
        "--mass-matrix",
        choices=MASS_MATRICES,
        help="diagonal: estimate each coordinate's posterior variance in slow windows "
        "(default); identity: step size only",
    )
    g.add_argument(
        "--adapt-init-buffer", type=int, help="initial fast window, iterations (default 75)"
    )
    g.add_argument(
        "--adapt-window", type=int, help="first slow window, iterations; doubles (default 25)"
    )
    g.add_argument(
        "--adapt-term-buffer", type=int, help="final fast window, iterations (default 50)"
    )
    g.add_argument(
        "--target-accept-prob",
        type=float,
        help="mean acceptance probability the step size is tuned to (default 0.75)",
    )
    g.add_argument(
        "--step-size-jitter",
        type=float,
        help="each iteration's step size is uniform in [(1-j)eps, (1+j)eps] (default 0.15)",
    )
    g.add_argument(
        "--trajectory",
        choices=TRAJECTORIES,
        help="fixed: --num-leapfrog-steps per iteration (default); chees: ChEES-adapted "
        "trajectory length (needs 2+ chains)",
    )
    g.add_argument(
        "--max-leapfrog-steps",
        type=int,
        help="chees: at most this many leapfrog steps per iteration (default 1000)",
    )
    w = p.add_argument_group(
        "warm start",
        "Before burn-in, move each chain's prior draw toward the posterior by Adam steps on the "
        "log posterior (training.hmc.warm_start; docs/ADAPTATION.md).",
    )
    w.add_argument(
        "--warm-start-steps",
        type=int,
        help="Adam steps per chain before burn-in, one gradient each; 0 starts from the prior "
        "draw (default: the preset's, 300 for cpu and 0 for the others)",
    )
    w.add_argument(
        "--warm-start-learning-rate",
        type=float,
        help="Adam's step size for the warm start (default 0.02)",
    )
