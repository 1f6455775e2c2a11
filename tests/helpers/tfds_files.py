"""Tiny tfds MovieLens preparations, written by tfds's own `movielens` builder.

The builder runs unchanged on GroupLens files a test writes, with two stand-ins for what
this machine lacks: the download step returns the local folder (no network), and, when
TensorFlow is not installed, the parser's `tf.io.gfile.GFile` is Python's `open` (reading
the GroupLens files is the MovieLens parser's only use of TensorFlow). Everything the
readers see, features, serialization, shuffling, the array_record shards and
`dataset_info.json`, is tfds's own.
"""

from __future__ import annotations

import contextlib
import types
from pathlib import Path
from unittest import mock

from tests.helpers.movielens_files import ML100K_RATINGS, write_ml1m, write_ml100k
from training.data.tfds.reader import tensorflow_installed

# ml-100k's u.user: user id | age | gender | occupation | zip code (tfds's parser needs it).
ML100K_USERS = [
    (196, 49, "M", "writer", "55105"),
    (186, 39, "F", "executive", "00000"),
    (22, 25, "M", "writer", "40206"),
    (244, 28, "M", "technician", "80525"),
]
assert {u for u, *_ in ML100K_RATINGS} <= {u for u, *_ in ML100K_USERS}

_OPEN_AS_GFILE = types.SimpleNamespace(
    io=types.SimpleNamespace(gfile=types.SimpleNamespace(GFile=open))
)


def write_grouplens(config: str, extracted: Path, **overrides: bytes | None) -> Path:
    """Write the GroupLens files of `config` ('1m-ratings' or '100k-ratings') under
    `extracted/ml-1m/` or `extracted/ml-100k/`, as the GroupLens zip extracts."""
    if config.startswith("1m"):
        write_ml1m(extracted / "ml-1m", **overrides)
    else:
        folder = write_ml100k(extracted / "ml-100k", **overrides)
        users = "".join("|".join(map(str, row)) + "\n" for row in ML100K_USERS)
        (folder / "u.user").write_text(users, encoding="ascii")
    return extracted


def prepare_movielens(
    config: str, extracted: Path, data_dir: Path, *, file_format: str = "array_record"
) -> Path:
    """Prepare tfds `movielens/<config>` into `data_dir` from the GroupLens files under
    `extracted` (see `write_grouplens`); returns the prepared version's folder."""
    import tensorflow_datasets as tfds
    from tensorflow_datasets.structured import movielens, movielens_parsing

    with contextlib.ExitStack() as stack:
        stack.enter_context(
            mock.patch.object(
                tfds.download.DownloadManager,
                "download_and_extract",
                lambda self, url: str(extracted),
            )
        )
        if not tensorflow_installed():
            stack.enter_context(mock.patch.object(movielens_parsing, "tf", _OPEN_AS_GFILE))
        builder = movielens.Movielens(
            config=config, data_dir=str(data_dir), file_format=file_format
        )
        builder.download_and_prepare(download_dir=str(data_dir.parent / "tfds-downloads"))
    return Path(builder.data_dir)
