"""Warmup adaptation for HMC: Stan's windowed step size and diagonal mass matrix, ChEES.

Pure functions over NamedTuple state (`schedule`, `dual_averaging`, `welford`,
`mass_matrix`, `chees`), validated settings (`options.AdaptationOptions`) and one kernel
that combines them (`kernel.AdaptiveHMC`).
"""

from training.hmc.adaptation.kernel import AdaptiveHMC, AdaptiveResults, InnerFactory
from training.hmc.adaptation.options import (
    MASS_MATRICES,
    TRAJECTORIES,
    AdaptationError,
    AdaptationOptions,
)
from training.hmc.adaptation.schedule import Windows, stan_windows

__all__ = [
    "MASS_MATRICES",
    "TRAJECTORIES",
    "AdaptationError",
    "AdaptationOptions",
    "AdaptiveHMC",
    "AdaptiveResults",
    "InnerFactory",
    "Windows",
    "stan_windows",
]
