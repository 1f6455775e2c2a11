"""Validate a job's data source: a named source, or a path inside the configured data root."""

from __future__ import annotations

from pathlib import Path

from common.sources import SourceError, check_synthetic, is_named


class DataSourceError(ValueError):
    """The data source is neither a named source nor a path inside the data root."""


def validate_items(items: str, *, data_root: str | Path) -> str:
    """The resolved path of an items file inside `data_root` (DataSourceError otherwise)."""
    return _inside_root(items.strip(), data_root=data_root, what="items path")


def validate_source(source: str, *, data_root: str | Path) -> str:
    """The source to hand to the training CLI: a named source unchanged, or the resolved
    absolute path of an existing file or folder inside `data_root`.

    Relative paths are taken relative to `data_root`. Symlinks are followed before the check,
    so neither `..` nor a symlink can reach outside the root.
    """
    source = source.strip()
    if not source:
        raise DataSourceError(
            "data source is empty; use 'synthetic', 'ml-1m', 'ml-100k', "
            "'tfds:movielens/1m-ratings' or a path inside the data root"
        )
    if source == "synthetic" or source.startswith("synthetic:"):
        try:  # refused now, not minutes later when the job's process starts
            check_synthetic(source)
        except SourceError as exc:
            raise DataSourceError(str(exc)) from None
    if is_named(source):
        return source
    return _inside_root(source, data_root=data_root, what="data path")


def _inside_root(source: str, *, data_root: str | Path, what: str) -> str:
    root = Path(data_root).resolve()
    try:
        candidate = Path(source).expanduser()
        resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # e.g. a NUL byte, an unknown ~user
        raise DataSourceError(
            f"{what} {source!r} is not a usable path ({exc}); use a path inside the "
            "data root or a named source (synthetic, ml-1m, ml-100k, tfds:movielens/...)"
        ) from None
    if not resolved.is_relative_to(root):
        raise DataSourceError(
            f"{what} {source!r} resolves to {resolved}, outside the data root {root}; "
            "put the dataset under the data root (setting SHARDLENS_DATA_DIR) or use a named "
            "source (synthetic, ml-1m, ml-100k, tfds:movielens/...)"
        )
    if not resolved.exists():
        raise DataSourceError(
            f"{what} {source!r} does not exist under the data root {root}; "
            "copy the MovieLens zip or folder, or the interactions file, there first"
        )
    return str(resolved)
