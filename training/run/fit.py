"""Fit one run and publish it: train, check the publish gate, save the version with its
convergence verdict, drop the checkpoint. Every process of a multi-process run calls it."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Mapping
from typing import Any

from common.jobspec import PROGRESS_RATES
from training.config import TrainConfig
from training.data import WatchData
from training.parallel.distributed import is_primary
from training.parallel.multihost import broadcast_text
from training.run.checkpoint import checkpoint_dir, run_key
from training.run.gate import PublishRefused, Thresholds, assess, check_publishable
from training.run.loop import train
from training.run.progress import ConsolePrinter, JsonlWriter, fan_out
from training.run.publishing import save_result
from training.run_settings import RunSettings

__all__ = ["fit_and_publish"]

_IDLE = dict.fromkeys(PROGRESS_RATES)
_REFUSED = "!refused"  # broadcast instead of a version id (ids never start with "!")


def fit_and_publish(
    run: RunSettings,
    config: TrainConfig,
    data: WatchData,
    *,
    thresholds: Thresholds,
    extra_files: Callable[[Any], Mapping[str, bytes]] | None = None,
    extra_progress: Callable[[dict[str, Any]], None] | None = None,
    on_boundary: Callable[[int], None] | None = None,
):
    """Train on `data`, publish the result (with `extra_files(result)`), drop the checkpoint.

    Returns (version id, TrainResult); the result is None on processes other than 0 of a
    multi-process run, and the version is None when `run.stop_after` stopped the run early.
    PublishRefused when the chains did not move (unless `run.force_publish`).
    """
    sinks = [
        ConsolePrinter(),
        JsonlWriter(run.progress_jsonl) if run.progress_jsonl else None,
        extra_progress,
    ]
    progress = fan_out(sinks if is_primary() else [])
    result = train(
        config,
        data,
        store_dir=run.store,
        resume=run.resume,
        run_id=run.run_id,
        progress=progress,
        stop_after=run.stop_after,
        segment_timeout_s=run.segment_timeout_s,
        on_boundary=on_boundary,
    )
    version = refusal = None
    if result is not None:
        try:
            reasons = check_publishable(result.diagnostics, force=run.force_publish)
        except PublishRefused as e:
            refusal = e
        else:
            if reasons:
                print(
                    "warning: publishing anyway (--force-publish), flagged as unconverged: "
                    + "; ".join(reasons),
                    file=sys.stderr,
                )
            progress(
                {
                    "phase": "saving",
                    "iteration": config.total_iterations,
                    "total": config.total_iterations,
                    **_IDLE,
                }
            )
            files = extra_files(result) if extra_files else None
            verdict = assess(result.diagnostics, thresholds)
            version = save_result(run.store, result, extra_files=files, convergence=verdict)
    # Also a barrier: the other processes finish once process 0 has published (or refused).
    version = broadcast_text(_REFUSED if refusal else version) or None
    if refusal is not None:
        raise refusal
    if version == _REFUSED:
        raise PublishRefused(
            "process 0 refused to publish the run (its chains did not move); see its output"
        )
    if version is not None and not run.keep_checkpoint:
        # Every process: with a store not shared by all hosts, each removes its parts.
        fingerprint = config.fingerprint(data.fingerprint())
        shutil.rmtree(
            checkpoint_dir(run.store, run_key(fingerprint, run.run_id)), ignore_errors=True
        )
    return version, result
