"""One entry point from a source description to `WatchData`, used by every caller."""

from __future__ import annotations

from pathlib import Path

from training.data.errors import DataError
from training.data.grouplens import read_grouplens
from training.data.synthetic import SyntheticSpec, generate
from training.data.tfds import read_tfds
from training.data.watch import WatchData

NAMED_SOURCES = ("synthetic", "ml-1m", "ml-100k")

_SYNTHETIC_KEYS = {
    "users": "num_users",
    "movies": "num_movies",
    "dim": "latent_dim",
    "seed": "seed",
}


def parse_synthetic(source: str) -> SyntheticSpec:
    """Parse `synthetic` or `synthetic:users=N,movies=M,dim=D,seed=S` into a spec."""
    _, _, options = source.partition(":")
    values: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in options.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in _SYNTHETIC_KEYS:
            raise DataError(
                f"bad synthetic option {item!r}; use synthetic:users=N,movies=M,dim=D,seed=S"
            )
        try:
            values[_SYNTHETIC_KEYS[key]] = int(value)
        except ValueError:
            raise DataError(f"synthetic option {key} must be an integer, got {value!r}") from None
    return SyntheticSpec(**values)


def _named_path(name: str, data_root: Path) -> Path:
    for candidate in (data_root / f"{name}.zip", data_root / name):
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
    store: str | Path | None = None,
    use_cache: bool = True,
) -> WatchData:
    """Turn a source description into `WatchData`.

    Sources: `synthetic[:users=N,movies=M,dim=D,seed=S]`; `ml-1m` or `ml-100k` (looked up in
    `data_root`); `tfds:movielens/1m-ratings` or `tfds:movielens/100k-ratings` (prepared in
    `$TFDS_DATA_DIR`; the parsed result is cached under `data_root`, or under `store` when
    the data root is read-only, unless `use_cache` is false); or a path to a GroupLens
    ml-1m/ml-100k zip or folder.
    """
    source = source.strip()
    if not source:
        raise DataError("empty data source; use 'synthetic', a dataset path, or 'tfds:NAME'")
    if source == "synthetic" or source.startswith("synthetic:"):
        return generate(parse_synthetic(source))
    root = Path(data_root) if data_root is not None else Path("var/data")
    if source.startswith("tfds:"):
        roots = [root] + ([Path(store)] if store is not None else [])
        return read_tfds(source.removeprefix("tfds:"), cache_roots=roots if use_cache else ())
    if source in ("ml-1m", "ml-100k"):
        return read_grouplens(_named_path(source, root))
    return read_grouplens(source)
