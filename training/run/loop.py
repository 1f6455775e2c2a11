"""One training run: data -> padded problem -> segments (with checkpoints) -> result.

In a multi-process run every process calls `train` with the same arguments. Each builds
only its own block of users densely, checkpoints its own part, and takes part in gathering
the user-sharded draws to process 0, which alone reports progress and gets the result
(those per-process parts are in `training.run.per_process`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from common.jobspec import PROGRESS_RATES
from training.config import TrainConfig
from training.data import WatchData
from training.names import AXIS, STATE_NAMES
from training.parallel.mesh import make_mesh, padded_users
from training.parallel.multihost import GATHER_BYTES, barrier, local_block, local_rows
from training.run import checkpoint as ckpt
from training.run.diagnostics import acceptance, diagnose
from training.run.memory import (
    MemoryPlan,
    check_fits,
    compare_with_xla,
    host_available_bytes,
    plan_memory,
)
from training.run.per_process import (
    gather_adapted,
    gather_draws,
    restore_checkpoint,
    save_checkpoint,
)
from training.run.segments import TRACE_NAMES, Progress, Segments, prepare
from training.run.watchdog import Watchdog

__all__ = [
    "TrainResult",
    "adaptation_diagnostics",
    "memory_plan",
    "train",
]


class TrainResult(NamedTuple):
    """Samples in reference shapes (padding removed), traces, diagnostics, and what the
    warmup adapted: ``adaptation`` holds ``step_size`` (float, before jitter),
    ``inverse_mass_matrix`` ({state name: float32 array shaped like one draw of it}, or
    None for the identity metric) and ``trajectory_length`` (float, ChEES only, else None).
    """

    config: TrainConfig
    data: WatchData
    fingerprint: str
    samples: dict[str, np.ndarray]  # user_embeddings [S, C, N, D], user_bias [S, C, N], ...
    traces: dict[str, np.ndarray]  # [T, C] per chain; step_size, num_leapfrog_steps [T]
    diagnostics: dict[str, Any]
    adaptation: dict[str, Any] | None = None


def _boundaries(config: TrainConfig, start: int) -> list[tuple[int, int]]:
    """(start, length) of the segments left; phases never share a segment."""
    out = []
    it = start
    while it < config.total_iterations:
        phase_end = (
            config.num_burnin_steps if it < config.num_burnin_steps else config.total_iterations
        )
        length = min(config.segment_size, phase_end - it)
        out.append((it, length))
        it += length
    return out


def adaptation_diagnostics(
    adaptation: dict[str, Any], traces: dict[str, np.ndarray], config: TrainConfig
) -> dict[str, Any]:
    """JSON-ready summary of the warmup's outcome: settings, final step size, trajectory
    length and the leapfrog steps (gradient evaluations) run. The inverse mass matrix is
    summarized under the diagnostics' `mass_matrix`."""
    steps = np.asarray(traces["num_leapfrog_steps"], np.int64)
    sampling = steps[config.num_burnin_steps :]
    return {
        "mass_matrix": config.mass_matrix,
        "trajectory": config.trajectory,
        "step_size": adaptation["step_size"],
        "trajectory_length": adaptation["trajectory_length"],
        "leapfrog_steps_total": int(steps.sum()),
        "leapfrog_steps_per_draw": float(sampling.mean()) if sampling.size else None,
    }


def _emit(progress: Progress | None, **payload: Any) -> None:
    if progress is not None:
        progress(payload)


def _device_limit() -> int | None:
    """Bytes one accelerator can hold (None on CPU, or when the runtime does not say)."""
    device = jax.local_devices()[0]
    if device.platform == "cpu":
        return None
    stats = device.memory_stats() or {}
    limit = stats.get("bytes_limit")
    return int(limit) if limit else None


def memory_plan(config: TrainConfig, data: WatchData) -> MemoryPlan:
    """The run's memory needs against what this host and its devices have."""
    return plan_memory(
        config,
        users=data.num_users,
        movies=data.num_movies,
        watches=data.num_watches,
        processes=jax.process_count(),
        local_devices=len(jax.local_devices()),
        platform=jax.devices()[0].platform,
        available_device=_device_limit(),
        available_host=host_available_bytes(),
    )


def train(
    config: TrainConfig,
    data: WatchData,
    *,
    store_dir: str | Path | None = None,
    resume: bool = False,
    run_id: str | None = None,
    progress: Progress | None = None,
    stop_after: int | None = None,
    segment_timeout_s: float | None = None,
    gather_bytes: int = GATHER_BYTES,
    on_boundary: Callable[[int], None] | None = None,
) -> TrainResult | None:
    """Run HMC for `config` on `data`.

    With `store_dir`, a checkpoint is written at every segment boundary under
    `<store>/checkpoints/<run-key>/`, and `resume=True` continues from it. `stop_after`
    (for tests and time-boxed jobs) stops once that many iterations are done and returns
    None, leaving the checkpoint to resume from. `segment_timeout_s` bounds each segment
    (run, gather, checkpoint) in wall-clock seconds: past it, the process exits (see
    `training.run.watchdog`). In a multi-process run, processes other than 0 return None and
    never call `progress`; user draws reach process 0 in chunks of `gather_bytes`.

    Before anything is built, the memory the run needs is planned (`training.run.memory`): a
    run that does not fit raises `MemoryPlanError`; the plan goes to `progress` with the
    first "compile" payload (`sizes`), and XLA's own figures join it in the diagnostics.

    `on_boundary(iteration)` runs on every process after each segment's checkpoint and
    progress report; it may raise to stop the run there (e.g. on SIGTERM), keeping the
    checkpoint.
    """
    t_start = time.perf_counter()
    config.validate(available_devices=len(jax.devices()))
    plan = memory_plan(config, data)
    check_fits(plan, config)
    mesh = make_mesh(config.devices)
    primary = jax.process_index() == 0
    if not primary:
        progress = None
    shape = (padded_users(data.num_users, config.devices), data.num_movies)
    rows = local_rows(NamedSharding(mesh, P(AXIS)), shape)  # this process's users
    problem = prepare(data, num_devices=config.devices, rows=rows)
    fingerprint = config.fingerprint(data.fingerprint())
    directory = (
        ckpt.checkpoint_dir(store_dir, ckpt.run_key(fingerprint, run_id)) if store_dir else None
    )
    segments = Segments(config, problem, mesh)
    total = config.total_iterations
    idle = dict.fromkeys(PROGRESS_RATES)
    restored = restore_checkpoint(directory, fingerprint=fingerprint, resume=resume)
    first = 0 if restored is None else restored.iteration
    sizes = {**plan.as_dict(), "summary": plan.describe()}
    _emit(progress, phase="compile", iteration=first, total=total, **idle, sizes=sizes)
    if restored is None:
        state, results = segments.init()
        iteration = 0
        traces: dict[str, list[np.ndarray]] = {name: [] for name in TRACE_NAMES}
        kept: list[dict[str, np.ndarray]] = []
    else:
        state = segments.place_state(restored.state)
        results = segments.place_results(restored.kernel_results)
        iteration = restored.iteration
        traces = {name: [restored.traces[name]] for name in TRACE_NAMES}
        num_kept = max(0, iteration - config.num_burnin_steps)
        kept = (
            ckpt.load_samples(directory, num_kept=num_kept)
            if num_kept and directory and primary
            else []
        )

    run_seconds = 0.0
    run_iterations = 0
    compile_seconds = 0.0
    memory: dict[str, Any] = {}
    for start, length in _boundaries(config, iteration):
        if stop_after is not None and start >= stop_after:
            return None
        phase = "burnin" if start < config.num_burnin_steps else "sampling"
        if not segments.is_compiled(length):
            if run_iterations:  # the first compile was announced above
                _emit(progress, phase="compile", iteration=start, total=total, **idle)
            compile_seconds += segments.compile(state, results, length)
        if not memory:  # XLA's figures for the first compiled segment
            xla = segments.program.memory_analysis(length)
            memory = compare_with_xla(plan, config, xla, segment_length=length)
        with Watchdog(segment_timeout_s, what=f"segment {start}..{start + length}"):
            if not run_iterations:  # its first collectives: wait until every process compiled
                barrier("first segment")
            t0 = time.perf_counter()
            state, results, draws, seg_traces = segments.run(
                state, results, start=start, length=length
            )
            seg_traces = {k: np.asarray(v) for k, v in seg_traces.items()}
            elapsed = time.perf_counter() - t0
            run_seconds += elapsed
            run_iterations += length
            for name in TRACE_NAMES:
                traces[name].append(seg_traces[name])
            if phase == "sampling":
                segment_samples = gather_draws(draws, problem.num_users, gather_bytes=gather_bytes)
                if segment_samples is not None:
                    kept.append(segment_samples)
                    if directory:
                        ckpt.save_samples(
                            directory, start - config.num_burnin_steps, segment_samples
                        )
            del draws
            done = start + length
            if directory:
                save_checkpoint(
                    directory,
                    ckpt.Checkpoint(
                        iteration=done,
                        fingerprint=fingerprint,
                        state=tuple(local_block(x) for x in state),
                        kernel_results=tuple(local_block(x) for x in results),
                        traces={k: np.concatenate(v) for k, v in traces.items()},
                    ),
                )
        per_iteration = run_seconds / run_iterations
        accept = acceptance(seg_traces["log_accept_ratio"])  # a divergent proposal: 0
        _emit(
            progress,
            phase=phase,
            iteration=done,
            total=total,
            leapfrog_per_s=float(np.sum(seg_traces["num_leapfrog_steps"])) / elapsed,
            acceptance=float(np.mean(accept)),
            step_size=float(seg_traces["step_size"][-1]),
            eta_s=per_iteration * (total - done),
        )
        if on_boundary is not None:
            on_boundary(done)

    adapted = gather_adapted(segments, results, problem.num_users)
    if not primary or adapted is None:
        return None
    samples = {
        name: np.concatenate([seg[name] for seg in kept]).astype(np.float32, copy=False)
        for name in STATE_NAMES
    }
    all_traces = {k: np.concatenate(v) for k, v in traces.items()}
    diagnostics = diagnose(
        samples=samples,
        traces=all_traces,
        data=data,
        config=config,
        run_seconds=run_seconds,
        run_iterations=run_iterations,
        compile_seconds=compile_seconds,
        wall_seconds=time.perf_counter() - t_start,
        inverse_mass_matrix=adapted["inverse_mass_matrix"],
    )
    diagnostics["adaptation"] = adaptation_diagnostics(adapted, all_traces, config)
    diagnostics["memory"] = {
        "users": plan.users,
        "movies": plan.movies,
        "density": plan.density,
        "per_device": plan.per_device,
        "host_bytes": plan.host_total,
        **memory,
    }
    return TrainResult(
        config=config,
        data=data,
        fingerprint=fingerprint,
        samples=samples,
        traces=all_traces,
        diagnostics=diagnostics,
        adaptation=adapted,
    )
