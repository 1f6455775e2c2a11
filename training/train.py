"""One training run: data -> padded problem -> segments (with checkpoints) -> result."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from training import checkpoint as ckpt
from training.config import TrainConfig
from training.data import WatchData
from training.diagnostics import diagnose
from training.mesh import make_mesh
from training.names import STATE_NAMES
from training.sampler import TRACE_NAMES, Progress, Segments, prepare


class TrainResult(NamedTuple):
    """Samples in reference shapes (padding removed), traces, diagnostics."""

    config: TrainConfig
    data: WatchData
    fingerprint: str
    samples: dict[str, np.ndarray]  # user_embeddings [S, C, N, D], user_bias [S, C, N], ...
    traces: dict[str, np.ndarray]  # [T, C] per chain, step_size [T]
    diagnostics: dict[str, Any]


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


def _unpad(draws, num_users: int) -> dict[str, np.ndarray]:
    host = [np.asarray(x) for x in draws]
    host[0] = host[0][:, :, :num_users]
    host[1] = host[1][:, :, :num_users]
    return dict(zip(STATE_NAMES, host, strict=True))


def _emit(progress: Progress | None, **payload: Any) -> None:
    if progress is not None:
        progress(payload)


def train(
    config: TrainConfig,
    data: WatchData,
    *,
    store_dir: str | Path | None = None,
    resume: bool = False,
    run_id: str | None = None,
    progress: Progress | None = None,
    stop_after: int | None = None,
) -> TrainResult | None:
    """Run HMC for `config` on `data`.

    With `store_dir`, a checkpoint is written at every segment boundary under
    `<store>/checkpoints/<run-key>/`, and `resume=True` continues from it. `stop_after`
    (for tests and time-boxed jobs) stops once that many iterations are done and returns
    None, leaving the checkpoint to resume from.
    """
    t_start = time.perf_counter()
    config.validate(available_devices=len(jax.devices()))
    mesh = make_mesh(config.devices)
    problem = prepare(data, num_devices=config.devices)
    fingerprint = config.fingerprint(data.fingerprint())
    directory = (
        ckpt.checkpoint_dir(store_dir, ckpt.run_key(fingerprint, run_id)) if store_dir else None
    )
    segments = Segments(config, problem, mesh)
    total = config.total_iterations
    idle = {"leapfrog_per_s": None, "acceptance": None, "step_size": None, "eta_s": None}
    restored = ckpt.load(directory, fingerprint=fingerprint) if resume and directory else None
    first = 0 if restored is None else restored.iteration
    _emit(progress, phase="compile", iteration=first, total=total, **idle)
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
        kept = ckpt.load_samples(directory, num_kept=num_kept) if num_kept and directory else []

    run_seconds = 0.0
    run_iterations = 0
    compile_seconds = 0.0
    for start, length in _boundaries(config, iteration):
        if stop_after is not None and start >= stop_after:
            return None
        phase = "burnin" if start < config.num_burnin_steps else "sampling"
        if not segments.is_compiled(length):
            if run_iterations:  # the first compile was announced above
                _emit(progress, phase="compile", iteration=start, total=total, **idle)
            compile_seconds += segments.compile(state, results, length)
        t0 = time.perf_counter()
        state, results, draws, seg_traces = segments.run(state, results, start=start, length=length)
        seg_traces = {k: np.asarray(v) for k, v in seg_traces.items()}
        elapsed = time.perf_counter() - t0
        run_seconds += elapsed
        run_iterations += length
        for name in TRACE_NAMES:
            traces[name].append(seg_traces[name])
        if phase == "sampling":
            segment_samples = _unpad(draws, problem.num_users)
            kept.append(segment_samples)
            if directory:
                ckpt.save_samples(directory, start - config.num_burnin_steps, segment_samples)
        done = start + length
        if directory:
            ckpt.save(
                directory,
                ckpt.Checkpoint(
                    iteration=done,
                    fingerprint=fingerprint,
                    state=tuple(np.asarray(x) for x in state),
                    kernel_results=tuple(np.asarray(x) for x in results),
                    traces={k: np.concatenate(v) for k, v in traces.items()},
                ),
            )
        per_iteration = run_seconds / run_iterations
        accept = np.minimum(1.0, np.exp(np.minimum(seg_traces["log_accept_ratio"], 0.0)))
        _emit(
            progress,
            phase=phase,
            iteration=done,
            total=total,
            leapfrog_per_s=length * config.num_leapfrog_steps / elapsed,
            acceptance=float(np.mean(accept)),
            step_size=float(seg_traces["step_size"][-1]),
            eta_s=per_iteration * (total - done),
        )

    samples = {
        name: np.concatenate([seg[name] for seg in kept]).astype(np.float32) for name in STATE_NAMES
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
    )
    return TrainResult(
        config=config,
        data=data,
        fingerprint=fingerprint,
        samples=samples,
        traces=all_traces,
        diagnostics=diagnostics,
    )
