"""Read MovieLens through tensorflow-datasets, as the reference notebook does.

Only this module imports `tensorflow_datasets`, and only when a `tfds:` source is asked
for. It reads a dataset prepared with TensorFlow (tfrecord) or one prepared in the
`array_record` format, which needs no TensorFlow (`tfds.data_source`).
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from training.data.errors import DataError
from training.data.genres import GENRES
from training.data.watch import WatchData, build_watch_data

SUPPORTED = ("movielens/1m-ratings", "movielens/100k-ratings")

_INSTALL_HINT = (
    "install the extra with `pip install -e '.[tfds]'`, then prepare the dataset once "
    "(on a machine with internet): `tfds build movielens/1m-ratings --file_format=array_record`; "
    "or point --data at the GroupLens zip instead"
)


def _import_tfds() -> Any:
    try:
        return importlib.import_module("tensorflow_datasets")
    except ImportError:
        raise DataError(f"tensorflow-datasets is not installed: {_INSTALL_HINT}") from None


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _records(tfds: Any, name: str, data_dir: str | None) -> list[dict[str, Any]]:
    """All records of the train split, as dicts of numpy values."""
    try:
        source = tfds.data_source(name, split="train", data_dir=data_dir)
        return [source[i] for i in range(len(source))]
    except Exception as array_record_error:
        try:
            dataset = tfds.as_numpy(
                tfds.load(name, split="train", data_dir=data_dir, batch_size=-1)
            )
        except Exception as load_error:
            raise DataError(
                f"cannot read prepared dataset {name!r} (array_record: {array_record_error}; "
                f"tfrecord: {load_error}): {_INSTALL_HINT}"
            ) from None
        keys = list(dataset)
        count = len(dataset[keys[0]])
        return [{k: dataset[k][i] for k in keys} for i in range(count)]


def read_tfds(name: str, *, data_dir: str | None = None) -> WatchData:
    """Read `movielens/1m-ratings` or `movielens/100k-ratings` into `WatchData`."""
    if name not in SUPPORTED:
        raise DataError(f"unsupported tfds dataset {name!r}; choose one of {', '.join(SUPPORTED)}")
    tfds = _import_tfds()
    records = _records(tfds, name, data_dir)
    if not records:
        raise DataError(f"tfds dataset {name!r} has no records")
    catalog: dict[int, tuple[str, tuple[str, ...]]] = {}
    users = np.empty(len(records), np.int64)
    movies = np.empty(len(records), np.int64)
    times = np.empty(len(records), np.int64)
    for i, record in enumerate(records):
        movie = int(_text(record["movie_id"]))
        users[i] = int(_text(record["user_id"]))
        movies[i] = movie
        times[i] = int(record.get("timestamp", 0))
        if movie not in catalog:
            labels = np.atleast_1d(np.asarray(record["movie_genres"])).tolist()
            catalog[movie] = (_text(record["movie_title"]), tuple(GENRES[int(g)] for g in labels))
    return build_watch_data(
        source=f"tfds:{name}",
        rating_user_ids=users,
        rating_movie_ids=movies,
        movie_catalog=catalog,
        rating_timestamps=times,
    )
