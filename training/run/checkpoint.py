"""Checkpoints at segment boundaries: written atomically, refused when the run differs.

Layout of `<store>/checkpoints/<run-key>/`:
  state.npz              iteration, fingerprint, chain state (padded), stacked kernel
                         results, traces so far; replaced atomically at every boundary
  samples-<start>.npz    the draws of one sampling segment starting at result `start`
                         (padding removed); written before `state.npz` moves past them

A run over several processes writes no `state.npz`; each process writes its own part,
`state-<iteration>.p<process>of<count>.npz` (its users' rows of U, u and of the stacked
kernel results; V, v and the traces whole), and keeps its last two. A peer may die
between two processes' writes, so on resume the processes agree on the newest iteration
they all hold (`shard_iterations`). Only process 0 writes `samples-*.npz`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from storage.fsio import atomic_write
from storage.layout import checkpoints_dir
from training.names import STATE_NAMES

__all__ = [
    "KEEP_SHARDS",
    "Checkpoint",
    "CheckpointError",
    "checkpoint_dir",
    "load",
    "load_samples",
    "load_shard",
    "run_key",
    "save",
    "save_samples",
    "save_shard",
    "shard_iterations",
]

_STATE_FILE = "state.npz"
_SHARD = re.compile(r"state-(\d{8})\.p(\d{4})of(\d{4})\.npz")
KEEP_SHARDS = 2


class CheckpointError(ValueError):
    """A checkpoint cannot be used for this run; the message says what to do."""


class Checkpoint(NamedTuple):
    """Everything needed to continue a run at `iteration` (host arrays)."""

    iteration: int
    fingerprint: str
    state: tuple[np.ndarray, ...]
    kernel_results: tuple[np.ndarray, ...]  # flattened leaves, stacked per device
    traces: dict[str, np.ndarray]


def run_key(fingerprint: str, run_id: str | None = None) -> str:
    """Folder name of a run's checkpoints: the run id, or a prefix of the fingerprint."""
    if run_id:
        if not run_id.replace("-", "").replace("_", "").isalnum():
            raise CheckpointError(f"run id {run_id!r} may hold only letters, digits, '-' and '_'")
        return run_id
    return fingerprint[:16]


def checkpoint_dir(store_dir: str | Path, key: str) -> Path:
    return checkpoints_dir(store_dir) / key


def _atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]


def save_samples(directory: Path, start: int, samples: dict[str, np.ndarray]) -> None:
    """Store one segment's draws (result indices start, start+1, ...)."""
    _atomic_savez(directory / f"samples-{start:08d}.npz", samples)


def _arrays(checkpoint: Checkpoint) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {
        "meta": np.array(
            json.dumps({"iteration": checkpoint.iteration, "fingerprint": checkpoint.fingerprint})
        ),
    }
    for name, value in zip(STATE_NAMES, checkpoint.state, strict=True):
        arrays[f"state/{name}"] = value
    for i, leaf in enumerate(checkpoint.kernel_results):
        arrays[f"results/{i:04d}"] = leaf
    for name, value in checkpoint.traces.items():
        arrays[f"trace/{name}"] = value
    return arrays


def save(directory: Path, checkpoint: Checkpoint) -> None:
    """Atomically replace the run's state file."""
    _atomic_savez(directory / _STATE_FILE, _arrays(checkpoint))


def _read(path: Path, *, directory: Path, fingerprint: str) -> Checkpoint:
    try:
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            files = sorted(z.files)
            state = tuple(z[f"state/{n}"] for n in STATE_NAMES)
            results = tuple(z[k] for k in files if k.startswith("results/"))
            traces = {k.removeprefix("trace/"): z[k] for k in files if k.startswith("trace/")}
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({e}); delete {directory} to start over"
        ) from e
    if meta["fingerprint"] != fingerprint:
        raise CheckpointError(
            f"checkpoint {path} belongs to a different configuration or dataset "
            f"(fingerprint {meta['fingerprint'][:16]} != {fingerprint[:16]}); run without "
            f"--resume, use another --run-id, or delete {directory}"
        )
    return Checkpoint(
        iteration=int(meta["iteration"]),
        fingerprint=meta["fingerprint"],
        state=state,
        kernel_results=results,
        traces=traces,
    )


def load(directory: Path, *, fingerprint: str) -> Checkpoint | None:
    """The checkpoint in `directory`, None when there is none; refuses a different run."""
    path = directory / _STATE_FILE
    if not path.exists():
        if any(_SHARD.fullmatch(p.name) for p in _listing(directory)):
            raise CheckpointError(
                f"checkpoint {directory} was written by a multi-process run; resume it with "
                "the same number of processes, or delete it to start over"
            )
        return None
    return _read(path, directory=directory, fingerprint=fingerprint)


def _listing(directory: Path) -> list[Path]:
    return list(directory.iterdir()) if directory.is_dir() else []


def _shard_path(directory: Path, iteration: int, process: int, count: int) -> Path:
    return directory / f"state-{iteration:08d}.p{process:04d}of{count:04d}.npz"


def shard_iterations(directory: Path, *, process: int, count: int) -> list[int]:
    """Iterations this process holds its part of (ascending); refuses another layout."""
    mine = []
    for path in _listing(directory):
        if path.name == _STATE_FILE:
            raise CheckpointError(
                f"checkpoint {directory} was written by a single process; resume it with one "
                "process, or delete it to start over"
            )
        match = _SHARD.fullmatch(path.name)
        if not match:
            continue
        if int(match.group(3)) != count:
            raise CheckpointError(
                f"checkpoint {directory} was written by {int(match.group(3))} processes, this "
                f"run has {count}; resume with as many processes, or delete it to start over"
            )
        if int(match.group(2)) == process:
            mine.append(int(match.group(1)))
    return sorted(mine)


def save_shard(directory: Path, checkpoint: Checkpoint, *, process: int, count: int) -> None:
    """Write this process's part at `checkpoint.iteration`; keep its last `KEEP_SHARDS`."""
    _atomic_savez(_shard_path(directory, checkpoint.iteration, process, count), _arrays(checkpoint))
    for old in shard_iterations(directory, process=process, count=count)[:-KEEP_SHARDS]:
        _shard_path(directory, old, process, count).unlink(missing_ok=True)


def load_shard(
    directory: Path, *, fingerprint: str, iteration: int, process: int, count: int
) -> Checkpoint:
    """This process's part of the checkpoint at `iteration` (refuses a different run)."""
    path = _shard_path(directory, iteration, process, count)
    if not path.exists():
        raise CheckpointError(
            f"checkpoint part {path} is missing; delete {directory} to start over"
        )
    return _read(path, directory=directory, fingerprint=fingerprint)


def load_samples(directory: Path, *, num_kept: int) -> list[dict[str, np.ndarray]]:
    """The stored sampling segments covering results [0, num_kept), in order."""
    segments = []
    covered = 0
    for path in sorted(directory.glob("samples-*.npz")):
        start = int(path.stem.split("-")[1])
        if start >= num_kept:
            continue
        if start != covered:
            raise CheckpointError(f"checkpoint {directory} misses samples {covered}..{start}")
        with np.load(path) as z:
            segment = {k: z[k] for k in z.files}
        length = next(iter(segment.values())).shape[0]
        keep = min(length, num_kept - start)
        segments.append({k: v[:keep] for k, v in segment.items()})
        covered = start + keep
    if covered != num_kept:
        raise CheckpointError(f"checkpoint {directory} holds {covered} of {num_kept} samples")
    return segments
