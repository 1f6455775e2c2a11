"""Validate a job's data source: a named source, or a path inside the configured data root."""

from __future__ import annotations

from pathlib import Path

NAMED = ("synthetic", "ml-1m", "ml-100k")
PREFIXES = ("synthetic:", "tfds:movielens/")


class DataSourceError(ValueError):
    """The data source is neither a named source nor a path inside the data root."""


def is_named(source: str) -> bool:
    return source in NAMED or any(source.startswith(p) and len(source) > len(p) for p in PREFIXES)


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
    if is_named(source):
        return source
    root = Path(data_root).resolve()
    candidate = Path(source).expanduser()
    resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not resolved.is_relative_to(root):
        raise DataSourceError(
            f"data path {source!r} resolves to {resolved}, outside the data root {root}; "
            "put the dataset under the data root (setting SHARDLENS_DATA_DIR) or use a named "
            "source (synthetic, ml-1m, ml-100k, tfds:movielens/...)"
        )
    if not resolved.exists():
        raise DataSourceError(
            f"data path {source!r} does not exist under the data root {root}; "
            "copy an ml-1m/ml-100k zip or folder there first"
        )
    return str(resolved)
