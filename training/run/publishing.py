"""Hand a finished run to the posterior store."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from storage.posterior import publish_posterior
from training.run.loop import TrainResult
from training.run.trace_plots import trace_plot_png

__all__ = [
    "PLOT_NAME",
    "result_config",
    "result_files",
    "save_result",
]

PLOT_NAME = "plots/trace.png"


def result_files(result: TrainResult) -> dict[str, bytes]:
    return {
        PLOT_NAME: trace_plot_png(result.traces, num_burnin_steps=result.config.num_burnin_steps)
    }


def result_config(result: TrainResult) -> dict[str, Any]:
    return {**result.config.as_dict(), "fingerprint": result.fingerprint}


def save_result(
    store_dir: str | Path,
    result: TrainResult,
    *,
    extra_files: Mapping[str, bytes] | None = None,
    convergence: Mapping[str, Any] | None = None,
) -> str:
    """Publish `result` (samples, traces, diagnostics, plots, any extra files) with its
    convergence verdict (`training.run.gate.assess`); returns the new version id."""
    return publish_posterior(
        store_dir,
        samples=result.samples,
        data=result.data,
        config=result_config(result),
        traces=result.traces,
        diagnostics=result.diagnostics,
        files={**result_files(result), **(extra_files or {})},
        convergence=convergence,
    )
