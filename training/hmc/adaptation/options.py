"""The adaptation's settings as one validated, immutable value (keyword-only).

Defaults are Stan's where Stan has one (windows 75 / 25 / 50), TFP's target acceptance
for HMC (0.75) and ChEES settings, and PyMC's HMC step-size jitter (0.15).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from training.config import MASS_MATRICES, REDUCTIONS, TRAJECTORIES
from training.hmc.adaptation.schedule import Windows, stan_windows

__all__ = ["MASS_MATRICES", "TRAJECTORIES", "AdaptationError", "AdaptationOptions"]


class AdaptationError(ValueError):
    """Inconsistent adaptation options; the message names the one to change."""


@dataclass(frozen=True, kw_only=True)
class AdaptationOptions:
    """How `AdaptiveHMC` tunes its inner kernel.

    - ``initial_step_size`` (> 0), ``num_leapfrog_steps`` (>= 1; the fixed count, or where
      ChEES starts: T = step size x steps);
    - ``num_adaptation_steps``: the first iterations adapt, then everything is fixed;
    - ``mass_matrix``: "diagonal" (Stan's windowed estimate) or "identity";
    - ``trajectory``: "fixed" or "chees" (``max_leapfrog_steps`` caps it,
      ``jitter_amount`` in (0, 1] scales its Halton jitter, TFP's default 1);
    - ``step_size_jitter`` in [0, 1): each iteration's step size is uniform in
      [(1 - j) eps, (1 + j) eps];
    - ``target_accept_prob`` in (0, 1); ``adapt_step_size=False`` keeps the initial step
      size (NumPyro's option of that name);
    - ``windows``: Stan's (initial fast buffer, first slow window, terminal fast buffer);
    - ``reduction``: "psum" or "ordered" for the cross-device sums (`training.parallel.reductions`).

    Raises `AdaptationError` for an invalid value.
    """

    initial_step_size: float
    num_leapfrog_steps: int
    num_adaptation_steps: int
    mass_matrix: str = "diagonal"
    trajectory: str = "fixed"
    step_size_jitter: float = 0.15
    target_accept_prob: float = 0.75
    adapt_step_size: bool = True
    windows: tuple[int, int, int] = (75, 25, 50)
    max_leapfrog_steps: int = 1000
    jitter_amount: float = 1.0
    reduction: str = "psum"

    def __post_init__(self) -> None:
        choices = {
            "mass_matrix": (self.mass_matrix, MASS_MATRICES),
            "trajectory": (self.trajectory, TRAJECTORIES),
            "reduction": (self.reduction, REDUCTIONS),
        }
        for name, (value, allowed) in choices.items():
            if value not in allowed:
                raise AdaptationError(f"{name} {value!r}: use one of {', '.join(allowed)}")
        if not (math.isfinite(self.initial_step_size) and self.initial_step_size > 0):
            raise AdaptationError(
                f"initial_step_size must be positive, got {self.initial_step_size}"
            )
        if self.num_leapfrog_steps < 1 or self.max_leapfrog_steps < 1:
            raise AdaptationError("num_leapfrog_steps and max_leapfrog_steps must be >= 1")
        if self.num_adaptation_steps < 0:
            raise AdaptationError(
                f"num_adaptation_steps must be >= 0, got {self.num_adaptation_steps}"
            )
        if not 0.0 <= self.step_size_jitter < 1.0:
            raise AdaptationError(
                f"step_size_jitter must be in [0, 1), got {self.step_size_jitter}"
            )
        if not 0.0 < self.target_accept_prob < 1.0:
            raise AdaptationError(
                f"target_accept_prob must be in (0, 1), got {self.target_accept_prob}"
            )
        if not 0.0 < self.jitter_amount <= 1.0:
            raise AdaptationError(f"jitter_amount must be in (0, 1], got {self.jitter_amount}")
        try:
            self.schedule()
        except ValueError as e:
            raise AdaptationError(str(e)) from None

    def schedule(self) -> Windows:
        """Stan's windows over the adapting iterations."""
        init_buffer, base_window, term_buffer = self.windows
        return stan_windows(
            self.num_adaptation_steps,
            init_buffer=init_buffer,
            base_window=base_window,
            term_buffer=term_buffer,
        )
