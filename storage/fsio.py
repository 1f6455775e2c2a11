"""Durable file primitives: fsync'd writes, atomic replace, chunked hashing, a file lock.

The one place for atomic writes and inter-process locks (`filelock`: `flock` on POSIX,
`msvcrt` locking on Windows, so the package imports on platforms without POSIX locks)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from filelock import FileLock

__all__ = [
    "HASH_CHUNK",
    "atomic_save_npy",
    "atomic_write",
    "atomic_write_text",
    "exclusive_lock",
    "fsync_dir",
    "npy_chunks",
    "npy_header",
    "pid_alive",
    "sha256_file",
    "write_chunks",
]

HASH_CHUNK = 8 << 20  # 8 MiB reads keep hashing at disk/page-cache speed with little memory


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (creations, renames) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_chunks(path: Path, chunks: Iterable[bytes | memoryview]) -> tuple[str, int]:
    """Write `chunks` to a new file, fsync it, return (sha256 hex, size in bytes)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "xb") as f:
        for chunk in chunks:
            digest.update(chunk)
            f.write(chunk)
            size += len(chunk) if isinstance(chunk, bytes) else chunk.nbytes
        f.flush()
        os.fsync(f.fileno())
    return digest.hexdigest(), size


def npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    """The `.npy` header of a C-ordered array of this shape and dtype."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    )
    return buf.getvalue()


def npy_chunks(
    shape: tuple[int, ...], dtype: np.dtype, blocks: Iterable[np.ndarray]
) -> Iterator[bytes | memoryview]:
    """A `.npy` file as byte chunks: the header, then each C-contiguous block along axis 0."""
    yield npy_header(shape, dtype)
    rows = 0
    for block in blocks:
        block = np.ascontiguousarray(block, dtype=dtype)
        if block.shape[1:] != shape[1:]:
            raise ValueError(f"block shape {block.shape} does not fit array shape {shape}")
        rows += block.shape[0]
        yield block.data.cast("B")
    if rows != shape[0]:
        raise ValueError(f"wrote {rows} rows of an array with {shape[0]}")


def sha256_file(path: Path) -> str:
    """sha256 of a file, read in chunks (hashlib releases the GIL, so threads overlap)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, hashlib.sha256).hexdigest()


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Replace `path` atomically and durably with what `write(file)` writes: a temp file
    beside it (`.<name>.tmp-<pid>-<hex>`), fsync, rename over `path`, fsync of the folder.
    Readers see the old file or the new one, never a part; on any error the temp file is
    removed and the error propagates (OSError for a full disk)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write` of `text` as UTF-8."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """`atomic_write` of `array` as a `.npy` file (`np.save`, any shape and dtype, no
    pickles): readers that `np.load` the path see the old array or the new one, never a part.
    Raises OSError when the folder is not writable or the disk is full."""
    atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (created if missing; blocks until free).
    Excludes other processes, and other threads that take it through this function."""
    with FileLock(path, thread_local=False):
        yield


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
