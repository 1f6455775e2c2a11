"""One entry point from a source description to `WatchData`, used by every caller."""

from __future__ import annotations

from pathlib import Path

from common.sources import (
    MOVIELENS_RELEASES,
    NAMED_SOURCES,
    SourceError,
    parse_synthetic_options,
)
from storage.layout import DEFAULT_DATA
from training.data.errors import DataError
from training.data.generic import INTERACTION_SUFFIXES, read_interactions
from training.data.grouplens import read_grouplens
from training.data.load_options import LoadOptions
from training.data.rules import to_watch_data
from training.data.synthetic import SyntheticSpec, generate
from training.data.tfds import read_tfds
from training.data.watch import WatchData

__all__ = ["MOVIELENS_RELEASES", "NAMED_SOURCES", "load_source", "parse_synthetic"]

# Folder names GroupLens' zips extract to, where they differ from the release's name.
_FOLDER_ALIASES = {"ml-10m": ("ml-10M100K",)}


def parse_synthetic(source: str) -> SyntheticSpec:
    """Parse `synthetic` or `synthetic:users=N,movies=M,dim=D,seed=S` into a spec."""
    try:
        values = parse_synthetic_options(source)
    except SourceError as exc:
        raise DataError(str(exc)) from None
    return SyntheticSpec(**values)


def _named_path(name: str, data_root: Path) -> Path:
    folders = (name, *_FOLDER_ALIASES.get(name, ()))
    for candidate in (data_root / f"{name}.zip", *(data_root / f for f in folders)):
        if candidate.exists():
            return candidate
    raise DataError(
        f"dataset {name!r} not found: put the GroupLens download at {data_root / (name + '.zip')} "
        f"or extract it to {data_root / name} (set SHARDLENS_DATA_DIR to use another folder)"
    )


def load_source(
    source: str,
    *,
    data_root: str | Path | None = None,
    options: LoadOptions | None = None,
    store: str | Path | None = None,
    use_cache: bool = True,
) -> WatchData:
    """Turn a source description into `WatchData`, applying `options` (what counts as a
    watch, k-core, and how a generic file is read).

    Sources: `synthetic[:users=N,movies=M,dim=D,seed=S]`; a MovieLens release by name
    (`ml-1m`, `ml-25m`, ... looked up in `data_root`) or as a path to its zip or folder;
    `tfds:movielens/1m-ratings` or `tfds:movielens/100k-ratings` (prepared in
    `$TFDS_DATA_DIR`; the parsed result is cached under `data_root`, or under `store` when
    the data root is read-only, unless `use_cache` is false); or an interactions file
    (`.csv`, `.tsv`, `.parquet`).
    """
    options = (options or LoadOptions()).validate()
    source = source.strip()
    if not source:
        raise DataError("empty data source; use 'synthetic', a dataset path, or 'tfds:NAME'")
    generic = Path(source).suffix.lower() in INTERACTION_SUFFIXES
    if options.generic_only and not generic:
        flags = ", ".join("--" + k.replace("_", "-") for k in options.generic_only)
        raise DataError(
            f"{flags} only apply to an interactions file (.csv, .tsv, .parquet), not to {source!r}"
        )
    builtin = source == "synthetic" or source.startswith(("synthetic:", "tfds:"))
    if builtin and options.as_dict():
        raise DataError(
            f"--min-rating and the k-core flags apply to MovieLens releases and interactions "
            f"files, not to {source!r}"
        )
    if source == "synthetic" or source.startswith("synthetic:"):
        return generate(parse_synthetic(source))
    root = Path(data_root) if data_root is not None else DEFAULT_DATA
    if source.startswith("tfds:"):
        roots = [root] + ([Path(store)] if store is not None else [])
        return read_tfds(source.removeprefix("tfds:"), cache_roots=roots if use_cache else ())
    if generic:
        return to_watch_data(read_interactions(source, options), options)
    if source in MOVIELENS_RELEASES:
        return to_watch_data(read_grouplens(_named_path(source, root)), options)
    return to_watch_data(read_grouplens(source), options)
