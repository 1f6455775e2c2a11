"""What each process of a run does on its own, and how the parts meet on process 0.

In a multi-process run (`training.parallel.multihost`) every process holds only its block
of users: it saves and restores its own checkpoint part (`checkpoint.save_shard`), the
processes agree on the newest iteration they all hold, and the user-sharded draws and the
adapted metric are gathered to process 0 in chunks. In a one-process run these are the
plain checkpoint and no-op gathers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np

from training.names import STATE_NAMES
from training.parallel.multihost import agree_max_common, any_process, gather_to_primary
from training.run import checkpoint as ckpt
from training.run.segments import Segments

__all__ = ["gather_adapted", "gather_draws", "restore_checkpoint", "save_checkpoint"]


def gather_draws(draws, num_users: int, *, gather_bytes: int) -> dict[str, np.ndarray] | None:
    """One segment's draws on process 0, padding removed (None on the other processes).

    Draws are [steps, chains, users, ...]: the user axis (2) is gathered in row chunks.
    """
    gathered = [gather_to_primary(x, axis=2, max_bytes=gather_bytes) for x in draws]
    host = [x for x in gathered if x is not None]
    if len(host) != len(gathered):
        return None
    host[0] = host[0][:, :, :num_users]
    host[1] = host[1][:, :, :num_users]
    return dict(zip(STATE_NAMES, host, strict=True))


def gather_adapted(segments: Segments, results, num_users: int) -> dict[str, Any] | None:
    """The adapted step size, inverse mass matrix and trajectory length on process 0
    (padding removed; None on the other processes)."""
    adapted = segments.program.adapted(results)
    step = gather_to_primary(adapted["step_size"], axis=0)
    gathered = [gather_to_primary(x, axis=0) for x in adapted.get("inverse_mass_matrix", ())]
    length = adapted.get("trajectory_length")
    length = None if length is None else gather_to_primary(length, axis=0)
    parts = [p for p in gathered if p is not None]
    if step is None or len(parts) != len(gathered):
        return None
    inverse_mass = None
    if parts:
        parts[0], parts[1] = parts[0][:num_users], parts[1][:num_users]
        inverse_mass = dict(zip(STATE_NAMES, parts, strict=True))
    return {
        "step_size": float(step),
        "inverse_mass_matrix": inverse_mass,
        "trajectory_length": None if length is None else float(length),
    }


def restore_checkpoint(
    directory: Path | None, *, fingerprint: str, resume: bool
) -> ckpt.Checkpoint | None:
    """This process's part of the checkpoint to resume from (None: start afresh). With
    several processes they agree on the newest iteration all of them hold; CheckpointError
    when some hold parts but of no common iteration."""
    if not (resume and directory):
        return None
    if jax.process_count() == 1:
        return ckpt.load(directory, fingerprint=fingerprint)
    process, count = jax.process_index(), jax.process_count()
    held = ckpt.shard_iterations(directory, process=process, count=count)
    iteration = agree_max_common(held, width=ckpt.KEEP_SHARDS)
    if iteration is None:
        if any_process(bool(held)):
            raise ckpt.CheckpointError(
                f"the processes hold checkpoint parts of no common iteration in {directory}; "
                "delete it to start over"
            )
        return None
    return ckpt.load_shard(
        directory, fingerprint=fingerprint, iteration=iteration, process=process, count=count
    )


def save_checkpoint(directory: Path, checkpoint: ckpt.Checkpoint) -> None:
    """Write this process's part of `checkpoint` (the whole of it in a one-process run)."""
    if jax.process_count() == 1:
        ckpt.save(directory, checkpoint)
    else:
        ckpt.save_shard(
            directory, checkpoint, process=jax.process_index(), count=jax.process_count()
        )
