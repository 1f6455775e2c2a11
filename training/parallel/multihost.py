"""Global arrays from process-local blocks, and back (single process: plain device_put/asarray).

In a multi-process run no process holds a whole user-sharded array: it holds the rows on
its own devices. These helpers build global `jax.Array`s from such local blocks, read a
process's block back (for checkpoints), gather row chunks to process 0 (for publishing),
and agree on small integers across processes.

Every collective between processes waits first at a barrier of JAX's coordination service
(`barrier`). On CPU, XLA's gloo collectives give the peers only 30 seconds to arrive when
they first connect the devices of a collective (a fixed limit in XLA, not configurable);
on a loaded machine one process can reach a collective much later than another: it was
still compiling, or process 0 was publishing. The barrier waits as long as it takes, so
the collective that follows starts with every process present.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

__all__ = [
    "BARRIER_TIMEOUT_S",
    "GATHER_BYTES",
    "LayoutError",
    "agree_max_common",
    "any_process",
    "barrier",
    "broadcast_text",
    "chunk_rows",
    "gather_to_primary",
    "global_array",
    "local_block",
    "local_rows",
    "multi_process",
]

# Row chunks gathered to process 0 stay under this many bytes (per chunk, per device).
GATHER_BYTES = 64 * 2**20
# How long a barrier waits for the other processes. A dead process ends the run sooner:
# JAX's runtime stops every process once its heartbeats stop (--heartbeat-timeout).
BARRIER_TIMEOUT_S = 24 * 3600

_barriers: Counter[str] = Counter()


class LayoutError(RuntimeError):
    """This process's devices do not hold one contiguous block of the sharded axis."""


def multi_process() -> bool:
    return jax.process_count() > 1


def barrier(name: str, *, timeout_s: float = BARRIER_TIMEOUT_S) -> None:
    """Wait until every process reaches the barrier `name` (nothing with one process).

    A barrier of JAX's coordination service (`DistributedRuntimeClient.wait_at_barrier`),
    not a collective: it has no gloo connection to time out. Every process must pass the
    same names in the same order; each use gets its own id.
    """
    if not multi_process():
        return
    from jax._src import distributed  # the runtime client of jax.distributed.initialize

    _barriers[name] += 1
    client = distributed.global_state.client
    assert client is not None, "multi_process() implies jax.distributed is initialized"
    client.wait_at_barrier(f"shardlens:{name}:{_barriers[name]}", int(timeout_s * 1000))


def local_rows(sharding: NamedSharding, shape: Sequence[int], *, axis: int = 0) -> tuple[int, int]:
    """[start, stop) of `axis` that this process's devices hold under `sharding`."""
    spans: list[tuple[int, int]] = []
    for idx in sharding.addressable_devices_indices_map(tuple(shape)).values():
        part = idx[axis] if idx is not None else slice(None)
        start = part.start or 0
        stop = shape[axis] if part.stop is None else part.stop
        spans.append((start, stop))
    spans = sorted(set(spans))
    for (_, stop), (start, _) in itertools.pairwise(spans):
        if start != stop:
            raise LayoutError(
                f"process {jax.process_index()} holds rows {spans}, not one contiguous block; "
                "the mesh must list each process's devices together"
            )
    return spans[0][0], spans[-1][1]


def global_array(sharding: NamedSharding, local: np.ndarray, shape: Sequence[int]) -> jax.Array:
    """The global array of `shape` whose process-local block (or whole value) is `local`."""
    if not multi_process():
        return jax.device_put(local, sharding)
    return jax.make_array_from_process_local_data(sharding, np.asarray(local), tuple(shape))


def local_block(x: jax.Array) -> np.ndarray:
    """This process's contiguous block of `x` (the whole value when fully addressable)."""
    if x.is_fully_addressable:
        return np.asarray(x)
    shards: dict[tuple[int, ...], Any] = {}
    for shard in x.addressable_shards:
        key = tuple((s.start or 0) for s in shard.index)
        shards.setdefault(key, shard)
    axes = [a for a in range(x.ndim) if len({k[a] for k in shards}) > 1]
    if not axes:  # replicated: every local device holds the whole value
        return np.asarray(next(iter(shards.values())).data)
    if len(axes) > 1:
        raise LayoutError(f"arrays sharded along more than one axis are not supported: {axes}")
    ordered = [shards[k] for k in sorted(shards)]
    return np.concatenate([np.asarray(s.data) for s in ordered], axis=axes[0])


@functools.cache
def _row_slicer(sharding: NamedSharding, axis: int, rows: int):
    replicated = NamedSharding(sharding.mesh, P())
    return jax.jit(
        lambda x, start: jax.lax.dynamic_slice_in_dim(x, start, rows, axis),
        out_shardings=replicated,
    )


def chunk_rows(shape: Sequence[int], itemsize: int, *, axis: int, max_bytes: int) -> int:
    """Rows per gathered chunk: as many as fit in `max_bytes`, at least one."""
    row_bytes = itemsize * math.prod(s for i, s in enumerate(shape) if i != axis)
    return max(1, min(shape[axis], max_bytes // max(1, row_bytes)))


def gather_to_primary(
    x: jax.Array, *, axis: int, max_bytes: int = GATHER_BYTES
) -> np.ndarray | None:
    """The whole of `x` on process 0 (None elsewhere), moved in chunks of rows of `axis`.

    Each chunk is replicated to every device by one jitted dynamic slice (an all-gather
    of at most `max_bytes`); process 0 copies it into the output and every process drops it
    before the next, so host memory beyond the output stays at one chunk.
    """
    if x.is_fully_addressable:
        return np.asarray(x)
    if x.sharding.is_fully_replicated:
        return np.asarray(x) if jax.process_index() == 0 else None
    n = x.shape[axis]
    rows = chunk_rows(x.shape, x.dtype.itemsize, axis=axis, max_bytes=max_bytes)
    slicer = _row_slicer(x.sharding, axis, rows)
    out = np.empty(x.shape, x.dtype) if jax.process_index() == 0 else None
    for lo in range(0, n, rows):
        start = min(lo, n - rows)  # the last chunk overlaps the one before instead of padding
        chunk = slicer(x, np.int32(start))
        if out is not None:
            index = [slice(None)] * x.ndim
            index[axis] = slice(start, start + rows)
            out[tuple(index)] = np.asarray(chunk)
        else:
            chunk.block_until_ready()
        del chunk
    return out


def agree_max_common(values: Sequence[int], *, width: int) -> int | None:
    """The largest value every process listed (each lists up to `width`), None if none."""
    mine = np.full(width, -1, np.int64)
    mine[: len(values)] = sorted(values)[-width:] if values else []
    if not multi_process():
        everyone = mine[None]
    else:
        barrier("agree_max_common")
        everyone = np.asarray(multihost_utils.process_allgather(mine))
    common = set(everyone[0].tolist())
    for row in everyone[1:]:
        common &= set(row.tolist())
    common.discard(-1)
    return max(common) if common else None


def any_process(flag: bool) -> bool:
    """True when `flag` is true on any process."""
    if not multi_process():
        return flag
    barrier("any_process")
    return bool(np.asarray(multihost_utils.process_allgather(np.int32(flag))).any())


def broadcast_text(text: str | None, *, size: int = 256) -> str:
    """Process 0's `text` on every process (also a barrier)."""
    raw = (text or "").encode()[:size]
    if not multi_process():
        return raw.decode()
    buf = np.zeros(size, np.uint8)
    buf[: len(raw)] = np.frombuffer(raw, np.uint8)
    barrier("broadcast_text")  # process 0 may have been publishing for minutes
    out = np.asarray(multihost_utils.broadcast_one_to_all(buf))
    return bytes(out.astype(np.uint8)).rstrip(b"\0").decode()
