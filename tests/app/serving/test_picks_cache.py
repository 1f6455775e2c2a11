"""The precomputed-picks cache shared by workers and restarts."""

from __future__ import annotations

import errno

import numpy as np
import pytest

from app.serving import model_state
from app.serving.model_state import ModelHolder
from app.serving.picks_cache import cached_array
from storage.posterior import gc
from tests.helpers.app_helpers import publish, tiny_data


def test_second_load_reads_the_cache_and_matches(tmp_path, monkeypatch):
    store, cache = tmp_path / "store", tmp_path / "cache"
    data = tiny_data(num_users=15, num_movies=12)
    version = publish(store, data).version
    first = ModelHolder(store, cache_dir=cache)
    first.refresh()
    assert len(list(cache.glob(f"picks-{version}-*.npy"))) == 1

    def fail(**_):
        raise AssertionError("picks were recomputed despite the cache")

    monkeypatch.setattr(model_state, "precompute_user_scores", fail)
    second = ModelHolder(store, cache_dir=cache)
    assert second.refresh().served_version == version
    np.testing.assert_array_equal(second.current.picks, first.current.picks)
    np.testing.assert_array_equal(second.current.movie_major, first.current.movie_major)
    np.testing.assert_array_equal(second.current.mean_probability, first.current.mean_probability)
    np.testing.assert_array_equal(second.current.genre_picks, first.current.genre_picks)
    assert (first.cache_hits, first.cache_misses) == (0, 4)
    assert (second.cache_hits, second.cache_misses) == (4, 0)
    assert len(list(cache.glob(f"movies-{version}-*.npy"))) == 1
    first.stop()
    second.stop()


def test_unreadable_cache_is_recomputed(tmp_path):
    store, cache = tmp_path / "store", tmp_path / "cache"
    version = publish(store, tiny_data(num_users=15, num_movies=12)).version
    reference = ModelHolder(store)
    reference.refresh()
    ModelHolder(store, cache_dir=cache).refresh()
    (entry,) = cache.glob(f"picks-{version}-*.npy")
    entry.write_bytes(b"not an npy file")
    holder = ModelHolder(store, cache_dir=cache)
    holder.refresh()
    np.testing.assert_array_equal(holder.current.picks, reference.current.picks)
    assert np.load(entry).shape == reference.current.picks.shape  # rewritten


def test_cache_entries_of_deleted_versions_are_pruned(tmp_path, monkeypatch):
    monkeypatch.setenv("SHARDLENS_KEEP_VERSIONS", "1")
    store, cache = tmp_path / "store", tmp_path / "cache"
    data = tiny_data(num_users=10, num_movies=8)
    holder = ModelHolder(store, cache_dir=cache)
    old = publish(store, data, seed=1).version
    holder.refresh()
    new = publish(store, data, seed=2).version
    holder.refresh()  # pins `new`, releases `old`
    gc(store)
    third = publish(store, data, seed=3).version
    holder.refresh()
    names = {p.name for p in cache.glob("picks-*.npy")}
    assert not any(old in n for n in names)
    assert any(third in n for n in names)
    holder.stop()
    del new


@pytest.mark.parametrize("value", ["", None])
def test_cache_can_be_disabled(tmp_path, value, monkeypatch):
    from app.settings import Settings

    if value is None:
        assert Settings(cache_dir=None).cache_dir is None
    else:
        monkeypatch.setenv("SHARDLENS_CACHE_DIR", value)
        assert Settings().cache_dir is None


def test_a_cache_that_cannot_be_written_still_serves_and_leaves_no_part(tmp_path, monkeypatch):
    def disk_full(file, *args, **kwargs):
        file.write(b"\x93NUMPY")  # part of a header, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    def ones() -> np.ndarray:
        return np.ones((2, 3), np.int32)

    with monkeypatch.context() as patch:
        patch.setattr(np, "save", disk_full)
        array = cached_array(
            tmp_path, "picks", "v1-abc", shape=(2, 3), dtype=ones().dtype, compute=ones
        )
    np.testing.assert_array_equal(array, ones())
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".lock"] == []
    cached = cached_array(
        tmp_path, "picks", "v1-abc", shape=(2, 3), dtype=ones().dtype, compute=ones
    )
    assert isinstance(cached, np.ndarray) and (tmp_path / "picks-v1-abc.npy").is_file()
    np.testing.assert_array_equal(np.load(tmp_path / "picks-v1-abc.npy"), ones())
