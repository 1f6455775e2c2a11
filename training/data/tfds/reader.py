"""Read MovieLens prepared by tensorflow-datasets (`tfds:movielens/1m-ratings`), as the
reference notebook does, in seconds and without TensorFlow.

Only this package imports `tensorflow_datasets`, and only when a `tfds:` source is asked
for. tfds's `DatasetInfo` names the split's files; their records are read raw and decoded
in bulk (`records.py`), keeping only the five features the watch matrix needs. The result
is cached (`cache.py`), so later loads take well under a second.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from training.data.errors import DataError
from training.data.tfds.cache import cache_key, cache_path, load_cached, save_cached, writable_slot
from training.data.tfds.records import REQUIRED_FEATURES, decode_examples, to_watch_data
from training.data.tfds.shards import Shard, array_record_chunks, split_shards, tfrecord_chunks
from training.data.watch import WatchData

__all__ = ["READERS", "SUPPORTED", "choose_reader", "read_tfds"]

SUPPORTED = ("movielens/1m-ratings", "movielens/100k-ratings")
READERS = ("array_record", "tfrecord")
_SPLIT = "train"  # the MovieLens configs have this one split


def _install_hint(name: str) -> str:
    return (
        "install the extra with `pip install -e '.[tfds]'`, then prepare the dataset once "
        f"(with internet and TensorFlow): `tfds build {name} --file_format=array_record`, "
        "and set TFDS_DATA_DIR to the folder it was prepared in; or point --data at the "
        "GroupLens zip instead"
    )


def _import_tfds(name: str) -> Any:
    try:
        return importlib.import_module("tensorflow_datasets")
    except ImportError:
        raise DataError(f"tensorflow-datasets is not installed: {_install_hint(name)}") from None


def tensorflow_installed() -> bool:
    """Whether TensorFlow can be imported (checked without importing it)."""
    if "tensorflow" in sys.modules:  # imported already, or blocked with None
        return sys.modules["tensorflow"] is not None
    return importlib.util.find_spec("tensorflow") is not None


def choose_reader(file_format: str, *, tensorflow: bool) -> str:
    """The reader for a preparation in `file_format`: `array_record` shards are read without
    TensorFlow (even when it is installed: TensorFlow's tfds.load cannot read them);
    `tfrecord` shards need TensorFlow's record reader.

    Raises:
        DataError: the format needs TensorFlow and it is missing, or no reader knows it.
    """
    if file_format == "array_record":
        return "array_record"
    if file_format == "tfrecord":
        if tensorflow:
            return "tfrecord"
        raise DataError(
            "the dataset was prepared in the tfrecord format, which only TensorFlow reads: "
            "`pip install tensorflow`, or prepare it again with --file_format=array_record "
            "(read without TensorFlow)"
        )
    raise DataError(
        f"the dataset was prepared in the {file_format} format; prepare it again with "
        "--file_format=array_record"
    )


def _open_builder(tfds: Any, name: str, data_dir: str | None) -> Any:
    # tfds reads $TFDS_DATA_DIR once, at import: read it here so a change is honoured.
    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR") or None
    where = data_dir or "~/tensorflow_datasets"
    not_prepared = DataError(
        f"tfds dataset {name!r} is not prepared in {where}: {_install_hint(name)}"
    )
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.DatasetNotFoundError:
        raise not_prepared from None
    except Exception as e:  # a damaged dataset_info.json, an unreadable folder, ...
        raise DataError(f"cannot open tfds dataset {name!r} in {where}: {e}") from None
    if not builder.is_prepared():
        raise not_prepared
    return builder


def _file_format(builder: Any) -> str:
    file_format = builder.info.file_format
    return "tfrecord" if file_format is None else str(file_format.value)  # None: tfds's default


def _record_names(shards: Sequence[Shard]) -> Callable[[int], str]:
    starts = []
    total = 0
    for shard in shards:
        starts.append(total)
        total += shard.take

    def where(number: int) -> str:
        index = max(i for i, start in enumerate(starts) if start <= number)
        shard = shards[index]
        return f"{shard.path}, record {shard.skip + number - starts[index]}"

    return where


def _progress(total: int, name: str, enabled: bool | None) -> Any:
    from tqdm import tqdm  # a dependency of tensorflow-datasets

    # Shown on a terminal (or when asked) once the load has taken two seconds.
    return tqdm(
        total=total,
        desc=f"reading {name}",
        unit=" ratings",
        unit_scale=True,
        delay=2.0,
        disable=None if enabled is None else not enabled,
        file=sys.stderr,
        leave=False,
    )


def _decode(builder: Any, name: str, progress: bool | None) -> WatchData:
    reader = choose_reader(_file_format(builder), tensorflow=tensorflow_installed())
    features = builder.info.features
    missing = [f for f in REQUIRED_FEATURES if f not in features]
    if missing:
        raise DataError(
            f"tfds dataset {name!r} lacks the features {missing}; is it a ratings config?"
        )
    shards = split_shards(builder, _SPLIT)
    chunks: Iterator[list[bytes]] = (
        array_record_chunks(shards) if reader == "array_record" else tfrecord_chunks(shards)
    )
    with _progress(sum(s.take for s in shards), name, progress) as bar:
        ratings = decode_examples(
            chunks,
            genre_names=features["movie_genres"].feature.names,
            where=_record_names(shards),
            on_chunk=bar.update,
        )
        bar.set_description(f"indexing {name}")
        return to_watch_data(ratings, source=f"tfds:{name}")


def read_tfds(
    name: str,
    *,
    data_dir: str | None = None,
    cache_roots: Sequence[str | Path] = (),
    progress: bool | None = None,
) -> WatchData:
    """Read `movielens/1m-ratings` or `movielens/100k-ratings` into `WatchData`.

    Args:
        name: the tfds dataset, one of `SUPPORTED`.
        data_dir: where it was prepared (default: tfds's, `$TFDS_DATA_DIR` or
            `~/tensorflow_datasets`).
        cache_roots: folders to cache the parsed data under, in order of preference (the
            first writable one is used); empty: no cache.
        progress: show a progress bar (None: on a terminal, for loads over two seconds).

    Raises:
        DataError: the name is unsupported, tfds is missing, the dataset is not prepared or
            is damaged, or it is in a format that needs the missing TensorFlow.
    """
    if name not in SUPPORTED:
        raise DataError(f"unsupported tfds dataset {name!r}; choose one of {', '.join(SUPPORTED)}")
    tfds = _import_tfds(name)
    builder = _open_builder(tfds, name, data_dir)
    if not cache_roots:
        return _decode(builder, name, progress)
    roots = [Path(root) for root in cache_roots]
    version = str(builder.info.version)
    files = [p for p in Path(builder.data_dir).iterdir() if p.is_file()]
    key = cache_key(name, version, files)
    for root in roots:
        cached = load_cached(cache_path(root, name, version), key)
        if cached is not None:
            return cached
    with writable_slot(roots) as writable:
        if writable is None:
            return _decode(builder, name, progress)
        path = cache_path(writable, name, version)
        # Another process may have written it while this one waited for the lock.
        cached = load_cached(path, key)
        if cached is not None:
            return cached
        data = _decode(builder, name, progress)
        save_cached(path, data, key)
        return data
