"""The tfds source on real preparations written by tfds's own `movielens` builder.

Nothing here fakes tfds: each test prepares a tiny `movielens/*-ratings` dataset from
GroupLens files it writes (see `tests/helpers/tfds_files.py`), in the `array_record` format, and
reads it back through `load_source`.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import pathlib
import sys
import threading
import warnings

import numpy as np
import pytest

from tests.helpers.movielens_files import ML1M_RATINGS
from tests.helpers.tfds_files import prepare_movielens, write_grouplens
from training.cli.main import main as training_main
from training.data import DataError, WatchData, load_source
from training.data.tfds import choose_reader, read_tfds
from training.data.tfds import reader as tfds_reader
from training.data.tfds.cache import CACHE_FOLDER

if importlib.util.find_spec("tensorflow_datasets") is None:
    if os.environ.get("CI"):  # scripts/test installs the extra: never skip these in CI
        raise RuntimeError("tensorflow-datasets is missing: CI must run scripts/test")
    pytest.skip("needs the tfds extra: scripts/setup dev,tfds", allow_module_level=True)

ML1M = "movielens/1m-ratings"
ML100K = "movielens/100k-ratings"


@pytest.fixture
def prepared(tmp_path, monkeypatch):
    """Prepare a tfds MovieLens config from tiny GroupLens files; TFDS_DATA_DIR points at it."""
    data_dir = tmp_path / "tensorflow_datasets"
    monkeypatch.setenv("TFDS_DATA_DIR", str(data_dir))

    def prepare(config: str = "1m-ratings", **overrides: bytes | None) -> pathlib.Path:
        extracted = write_grouplens(config, tmp_path / f"grouplens-{config}", **overrides)
        return prepare_movielens(config, extracted, data_dir)

    return prepare


def _by_public_id(data: WatchData) -> tuple[dict, dict]:
    """Watches as {(user id, movie id): timestamp} and movies as {movie id: (title, genres)},
    which do not depend on the factorized order."""
    watches = dict(
        zip(
            zip(
                data.user_ids[data.user_index].tolist(),
                data.movie_ids[data.movie_index].tolist(),
                strict=True,
            ),
            data.timestamps.tolist(),
            strict=True,
        )
    )
    movies = dict(
        zip(data.movie_ids.tolist(), zip(data.titles, data.genres, strict=True), strict=True)
    )
    return watches, movies


@pytest.mark.parametrize("config", ["1m-ratings", "100k-ratings"])
def test_tfds_gives_the_same_watches_titles_and_genres_as_the_grouplens_files(
    prepared, tmp_path, config
):
    prepared(config)
    release = "ml-1m" if config.startswith("1m") else "ml-100k"
    from_tfds = load_source(f"tfds:movielens/{config}", use_cache=False)
    from_zip = load_source(str(tmp_path / f"grouplens-{config}" / release))
    assert from_tfds.source == f"tfds:movielens/{config}"
    tfds_watches, tfds_movies = _by_public_id(from_tfds)
    zip_watches, zip_movies = _by_public_id(from_zip)
    assert tfds_watches == zip_watches  # same pairs, and the latest timestamp of a repeat
    assert tfds_movies == zip_movies  # same title and genres for every public movie id
    assert from_tfds.first_genre == tuple(g[0] for g in from_tfds.genres)
    assert (from_tfds.num_users, from_tfds.num_movies) == (from_zip.num_users, from_zip.num_movies)
    if config.startswith("1m"):
        # ml-1m's repeated (user 6, movie 1) pair is two tfds records and one watch.
        assert from_tfds.num_watches == len(ML1M_RATINGS) - 1
        toy = from_tfds.movie_ids.tolist().index(1)
        assert from_tfds.genres[toy] == ("Animation", "Children", "Comedy")  # not Children's
        assert "Misérables, Les (1995)" in from_tfds.titles  # ISO-8859-1 in, text out


def test_ids_are_factorized_in_the_order_of_the_tfds_records(prepared):
    version = prepared()
    import tensorflow_datasets as tfds

    source = tfds.data_source(ML1M, split="train")  # tfds's own (slow) decoding, as a reference
    records = [source[i] for i in range(len(source))]
    data = load_source(f"tfds:{ML1M}", use_cache=False)
    users = list(dict.fromkeys(int(r["user_id"]) for r in records))
    movies = list(dict.fromkeys(int(r["movie_id"]) for r in records))
    assert data.user_ids.tolist() == users and data.movie_ids.tolist() == movies
    assert (version / "dataset_info.json").is_file()


# ---- the cache ----------------------------------------------------------------------------


def _count_decodes(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = tfds_reader.decode_examples

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(tfds_reader, "decode_examples", counting)
    return calls


def test_cache_is_written_reused_bypassed_and_invalidated(prepared, tmp_path, monkeypatch):
    prepared()
    root = tmp_path / "data-root"
    decodes = _count_decodes(monkeypatch)
    first = load_source(f"tfds:{ML1M}", data_root=root)
    cached_files = list((root / CACHE_FOLDER).glob("*.npz"))
    assert [p.name for p in cached_files] == ["movielens__1m-ratings-0.1.1.npz"]

    again = load_source(f"tfds:{ML1M}", data_root=root)
    assert len(decodes) == 1  # served from the cache
    assert again.fingerprint() == first.fingerprint()
    assert _by_public_id(again) == _by_public_id(first)
    assert again.user_ids.tolist() == first.user_ids.tolist()
    assert again.genres == first.genres and again.source == first.source

    load_source(f"tfds:{ML1M}", data_root=root, use_cache=False)
    assert len(decodes) == 2  # --no-cache reads the dataset again
    load_source(f"tfds:{ML1M}", data_root=tmp_path / "other-root", use_cache=False)
    assert not (tmp_path / "other-root").exists() and len(decodes) == 3  # and writes no cache

    # Prepare the dataset again with one rating fewer: the cache must not serve the old data.
    import shutil

    shutil.rmtree(tmp_path / "tensorflow_datasets" / "movielens")
    ratings = "".join(f"{u}::{m}::{r}::{t}\n" for u, m, r, t in ML1M_RATINGS[:-2])
    prepared(**{"ratings.dat": ratings.encode()})
    changed = load_source(f"tfds:{ML1M}", data_root=root)
    assert len(decodes) == 4
    assert changed.num_watches == first.num_watches - 1
    assert load_source(f"tfds:{ML1M}", data_root=root).fingerprint() == changed.fingerprint()
    assert len(decodes) == 4


def test_cache_goes_under_the_store_when_the_data_root_is_read_only(
    prepared, tmp_path, monkeypatch
):
    prepared()
    root, store = tmp_path / "read-only-root", tmp_path / "store"
    root.mkdir()
    real_mkdir = pathlib.Path.mkdir

    def read_only_root(self, *args, **kwargs):  # root is not stopped by chmod: refuse like EROFS
        if self == root or root in self.parents:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", read_only_root)
    decodes = _count_decodes(monkeypatch)
    load_source(f"tfds:{ML1M}", data_root=root, store=store)
    load_source(f"tfds:{ML1M}", data_root=root, store=store)
    assert len(decodes) == 1
    assert (store / CACHE_FOLDER / "movielens__1m-ratings-0.1.1.npz").is_file()
    assert not (root / ".cache").exists()

    with pytest.warns(RuntimeWarning, match="cannot cache the parsed tfds data"):
        data = load_source(f"tfds:{ML1M}", data_root=root)  # no store, nowhere to write
    assert data.num_watches == len(ML1M_RATINGS) - 1


def test_damaged_cache_file_is_reported_and_replaced(prepared, tmp_path):
    prepared()
    root = tmp_path / "data-root"
    good = load_source(f"tfds:{ML1M}", data_root=root)
    path = root / CACHE_FOLDER / "movielens__1m-ratings-0.1.1.npz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.warns(RuntimeWarning, match="damaged tfds cache"):
        again = load_source(f"tfds:{ML1M}", data_root=root)
    assert again.fingerprint() == good.fingerprint()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rewritten: no warning the next time
        assert load_source(f"tfds:{ML1M}", data_root=root).fingerprint() == good.fingerprint()


def test_concurrent_first_loads_decode_once(prepared, tmp_path, monkeypatch):
    prepared()
    root = tmp_path / "data-root"
    decodes = _count_decodes(monkeypatch)
    results: list[WatchData] = []
    threads = [
        threading.Thread(target=lambda: results.append(read_tfds(ML1M, cache_roots=[root])))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3 and len(decodes) == 1  # the others waited for the lock, then hit
    assert len({r.fingerprint() for r in results}) == 1
    assert not list((root / CACHE_FOLDER).glob(".*.tmp-*"))  # no temporary file left behind


# ---- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [ML1M, ML100K])
def test_tfds_missing_says_how_to_get_the_dataset_asked_for(monkeypatch, name):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(DataError, match=r"pip install -e '\.\[tfds\]'") as raised:
        load_source(f"tfds:{name}")
    assert f"tfds build {name} --file_format=array_record" in str(raised.value)
    other = ML100K if name == ML1M else ML1M
    assert other not in str(raised.value)


def test_unsupported_tfds_name():
    with pytest.raises(DataError, match=r"unsupported tfds dataset 'mnist'; choose one of"):
        load_source("tfds:mnist")
    with pytest.raises(DataError, match="unsupported tfds dataset 'movielens/1m-movies'"):
        load_source("tfds:movielens/1m-movies")


def test_unprepared_dataset_says_where_it_looked_and_how_to_prepare(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(DataError) as raised:
        load_source(f"tfds:{ML100K}", use_cache=False)
    message = str(raised.value)
    assert f"'{ML100K}' is not prepared in {tmp_path / 'empty'}" in message
    assert f"tfds build {ML100K} --file_format=array_record" in message


def test_missing_or_damaged_shard_names_the_file(prepared):
    version = prepared()
    shard = next(version.glob("*.array_record-*"))
    raw = shard.read_bytes()
    shard.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=rf"{shard.name}: not a readable array_record file"):
        load_source(f"tfds:{ML1M}", use_cache=False)
    shard.unlink()
    with pytest.raises(
        DataError, match=rf"{shard.name}: a file of the prepared dataset is missing"
    ):
        load_source(f"tfds:{ML1M}", use_cache=False)


def test_record_that_is_not_an_example_names_file_and_record(prepared):
    from array_record.python.array_record_module import ArrayRecordWriter

    version = prepared()
    shard = next(version.glob("*.array_record-*"))
    from array_record.python.array_record_module import ArrayRecordReader

    reader = ArrayRecordReader(str(shard))
    records = reader.read_all()
    reader.close()
    records[3] = b"\xff\xff not a protobuf"
    writer = ArrayRecordWriter(str(shard), "group_size:1")
    for record in records:
        writer.write(record)
    writer.close()
    with pytest.raises(DataError, match=rf"{shard.name}, record 3: not a MovieLens rating record"):
        load_source(f"tfds:{ML1M}", use_cache=False)


@pytest.mark.parametrize(
    ("file_format", "tensorflow", "expected"),
    [
        ("array_record", False, "array_record"),
        ("array_record", True, "array_record"),  # TensorFlow's tfds.load cannot read it
        ("tfrecord", True, "tfrecord"),
        ("tfrecord", False, "only TensorFlow reads"),
        ("parquet", True, "prepare it again with --file_format=array_record"),
    ],
)
def test_reader_is_chosen_by_the_prepared_format_and_tensorflow(file_format, tensorflow, expected):
    if expected in ("array_record", "tfrecord"):
        assert choose_reader(file_format, tensorflow=tensorflow) == expected
    else:
        with pytest.raises(DataError, match=expected):
            choose_reader(file_format, tensorflow=tensorflow)


def test_tfrecord_preparation_without_tensorflow_says_what_to_do(prepared, monkeypatch):
    version = prepared()
    # What tfds records for a tfrecord preparation (only TensorFlow can write one).
    info_path = version / "dataset_info.json"
    info = json.loads(info_path.read_text())
    info["fileFormat"] = "tfrecord"
    info_path.write_text(json.dumps(info))
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(DataError, match=r"tfrecord format, which only TensorFlow reads"):
        load_source(f"tfds:{ML1M}", use_cache=False)


# ---- the command line -----------------------------------------------------------------------


def test_cli_data_reads_tfds_with_and_without_the_cache(prepared, tmp_path, capsys, monkeypatch):
    prepared("100k-ratings")
    capsys.readouterr()  # tfds's own messages while preparing
    root = tmp_path / "data-root"
    argv = ["data", f"tfds:{ML100K}", "--json", "--data-root", str(root)]
    assert training_main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["users"], summary["movies"], summary["watches"]) == (4, 5, 7)
    assert (root / CACHE_FOLDER / "movielens__100k-ratings-0.1.1.npz").is_file()
    decodes = _count_decodes(monkeypatch)
    assert training_main(argv) == 0 and decodes == []
    assert training_main([*argv, "--no-cache"]) == 0 and decodes == [1]
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == summary


def test_cli_train_and_evaluate_take_no_cache():
    from training.cli.main import build_parser

    for command in ("train", "evaluate"):
        args = build_parser().parse_args([command, "--data", f"tfds:{ML1M}", "--no-cache"])
        assert args.no_cache is True
        assert build_parser().parse_args([command]).no_cache is False


def test_watch_arrays_have_the_types_of_the_grouplens_reader(prepared, ml1m_dir):
    prepared()
    from_tfds = load_source(f"tfds:{ML1M}", use_cache=False)
    from_zip = load_source(str(ml1m_dir))
    for field in ("user_ids", "movie_ids", "user_index", "movie_index", "timestamps"):
        assert getattr(from_tfds, field).dtype == getattr(from_zip, field).dtype, field
    assert isinstance(from_tfds.titles[0], str) and isinstance(from_tfds.genres[0], tuple)
    assert np.array_equal(np.sort(from_tfds.user_ids), np.sort(from_zip.user_ids))


@pytest.mark.skipif(
    not tfds_reader.tensorflow_installed(),
    reason="needs TensorFlow, which CI does not install (the tfrecord path is TensorFlow's)",
)
def test_tfrecord_preparation_is_read_with_tensorflow(tmp_path, monkeypatch):
    data_dir = tmp_path / "tensorflow_datasets"
    monkeypatch.setenv("TFDS_DATA_DIR", str(data_dir))
    extracted = write_grouplens("1m-ratings", tmp_path / "grouplens")
    version = prepare_movielens("1m-ratings", extracted, data_dir, file_format="tfrecord")
    assert list(version.glob("*.tfrecord-*"))
    from_tfds = load_source(f"tfds:{ML1M}", use_cache=False)
    from_zip = load_source(str(extracted / "ml-1m"))
    assert _by_public_id(from_tfds) == _by_public_id(from_zip)


def test_record_numbers_name_the_shard_and_its_own_record():
    from training.data.tfds.shards import Shard

    where = tfds_reader._record_names(
        [Shard(pathlib.Path("a.array_record"), 0, 3), Shard(pathlib.Path("b.array_record"), 2, 4)]
    )
    assert where(0) == "a.array_record, record 0"
    assert where(2) == "a.array_record, record 2"
    assert where(3) == "b.array_record, record 2"  # the split skips b's first two records
    assert where(6) == "b.array_record, record 5"
