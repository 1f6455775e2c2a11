"""Publishing and opening posterior versions: exact round trip, metadata, errors."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import numpy as np
import pytest

from storage import layout
from storage.posterior import (
    CorruptVersionError,
    NoPosteriorError,
    StoreError,
    VersionNotFoundError,
    latest_version,
    list_versions,
    open_posterior,
    publish_posterior,
)
from tests.helpers.storage_helpers import CHAINS, DRAWS, make_samples, publish_small, small_data


def test_round_trip_is_exact(tmp_path):
    data = small_data()
    samples = make_samples(data, seed=3)
    traces = {
        "target_log_prob": np.arange(10, dtype=np.float32).reshape(5, 2),
        "step_size": np.linspace(0.1, 0.2, 5),
    }
    version = publish_posterior(
        tmp_path,
        samples=samples,
        data=data,
        config={"preset": "smoke", "shape": (1, 2), "lr": np.float32(0.5)},
        traces=traces,
        diagnostics={"rhat_max": 1.01, "ess": np.array([3.0, float("nan")])},
        files={"plots/trace.png": b"\x89PNG fake"},
    )
    post = open_posterior(tmp_path)
    assert post.version == version == latest_version(tmp_path)
    assert (post.num_draws, post.num_chains, post.num_samples) == (DRAWS, CHAINS, DRAWS * CHAINS)
    assert (post.num_users, post.num_movies, post.latent_dim) == (30, 20, 3)
    restored = post.samples()
    for name, array in samples.items():
        assert restored[name].dtype == np.float32
        assert restored[name].tobytes() == array.tobytes(), name
    k, d = DRAWS * CHAINS, 3
    for i in range(data.num_users):
        embedding, bias = post.user_samples(i)
        assert np.array_equal(embedding, samples["user_embeddings"][:, :, i].reshape(k, d))
        assert np.array_equal(bias, samples["user_bias"][:, :, i].reshape(k))
        assert np.array_equal(post.watched(i), data.watched_by(i))
        assert post.watched(i).dtype == np.int32
    # k = s * C + c
    assert np.array_equal(post.movie_embeddings[1 * CHAINS + 1], samples["movie_embeddings"][1, 1])
    assert np.array_equal(post.movie_bias.reshape(DRAWS, CHAINS, -1), samples["movie_bias"])
    assert isinstance(post.movie_embeddings, np.memmap)
    assert isinstance(post.movie_bias, np.memmap)
    # Format 2: ids are their public text; the manifest says they were numbers.
    assert post.user_ids.tolist() == [str(u) for u in data.user_ids.tolist()]
    assert post.movie_ids.tolist() == [str(m) for m in data.movie_ids.tolist()]
    assert post.id_kinds == {"users": "int", "movies": "int"}
    assert post.titles == list(data.titles)
    assert post.genres == list(data.genres)
    assert post.first_genre == list(data.first_genre)
    assert np.array_equal(post.watch_counts, data.watch_counts)
    assert post.user_index(str(data.user_ids[7])) == 7
    assert post.movie_index(str(data.movie_ids[4])) == 4
    assert post.user_index(10**9) is None and post.movie_index(-1) is None
    assert np.array_equal(post.traces["target_log_prob"], traces["target_log_prob"])
    assert np.array_equal(post.traces["step_size"], traces["step_size"])
    assert post.diagnostics == {"rhat_max": 1.01, "ess": [3.0, None]}
    assert post.file("plots/trace.png").read_bytes() == b"\x89PNG fake"
    with pytest.raises(StoreError, match=r"plots/trace\.png"):
        post.file("plots/missing.png")
    with pytest.raises(IndexError):
        post.user_samples(data.num_users)
    m = post.manifest
    assert m["config"] == {"preset": "smoke", "shape": [1, 2], "lr": 0.5}
    assert m["data"]["fingerprint"] == data.fingerprint()
    assert m["data"]["source"] == data.source
    assert m["shapes"] == {
        "draws": DRAWS, "chains": CHAINS, "samples": k, "users": 30, "movies": 20, "latent_dim": 3
    }  # fmt: skip
    assert m["files"]["users.npy"]["shape"] == [30, k, d + 1]
    assert m["files"]["users.npy"]["dtype"] == "<f4"
    assert all(len(e["sha256"]) == 64 for e in m["files"].values())
    assert m["code"]["package"] == "shardlens" and "git_commit" in m["code"]
    datetime.fromisoformat(m["created_at"])
    post.close()


def test_user_samples_are_one_contiguous_block(tmp_path):
    publish_small(tmp_path)
    post = open_posterior(tmp_path)
    embedding, bias = post.user_samples(5)
    block = post._users[5]
    assert block.flags.c_contiguous and np.shares_memory(embedding, block)
    assert np.shares_memory(bias, block)


def test_float64_samples_are_stored_as_float32(tmp_path):
    data = small_data()
    samples = {k: v.astype(np.float64) for k, v in make_samples(data).items()}
    publish_posterior(tmp_path, samples=samples, data=data, config={})
    restored = open_posterior(tmp_path).samples()
    assert restored["movie_bias"].dtype == np.float32
    assert np.array_equal(restored["movie_bias"], samples["movie_bias"].astype(np.float32))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("movie_bias"), "missing"),
        (lambda s: s.update(extra=s["movie_bias"]), "unexpected"),
        (lambda s: s.update(movie_bias=s["movie_bias"][:, :, :3]), "movie_bias"),
        (lambda s: s.update(user_bias=s["user_bias"].astype(np.int32)), "dtype"),
    ],
)
def test_bad_samples_are_refused_without_leftovers(tmp_path, change, message):
    samples = make_samples(small_data())
    change(samples)
    with pytest.raises(StoreError, match=message):
        publish_posterior(tmp_path, samples=samples, data=small_data(), config={})
    assert list_versions(tmp_path) == []


def test_samples_must_match_the_data(tmp_path):
    samples = make_samples(small_data())
    samples = {k: v[:, :, :10] for k, v in samples.items()}
    with pytest.raises(StoreError, match="30 x 20"):
        publish_posterior(tmp_path, samples=samples, data=small_data(), config={})


@pytest.mark.parametrize("name", ["../evil.png", "/abs.png", ".hidden", "a//b", ""])
def test_unsafe_file_names_are_refused(tmp_path, name):
    with pytest.raises(StoreError, match="not allowed"):
        publish_small(tmp_path, files={name: b"x"})
    assert not (tmp_path / "versions").exists()


def test_unjsonable_config_is_refused(tmp_path):
    with pytest.raises(StoreError, match="JSON"):
        publish_posterior(
            tmp_path, samples=make_samples(small_data()), data=small_data(), config={"x": object()}
        )


def test_failed_write_leaves_no_temp_folder(tmp_path, monkeypatch):
    from storage import fsio

    write, calls = fsio.write_chunks, []

    def failing_write(path, chunks):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return write(path, chunks)

    monkeypatch.setattr(fsio, "write_chunks", failing_write)
    with pytest.raises(OSError, match="No space"):
        publish_small(tmp_path)
    assert os.listdir(tmp_path / "versions") == []
    assert latest_version(tmp_path) is None


def test_traces_must_be_numeric(tmp_path):
    with pytest.raises(StoreError, match="trace 'bad'"):
        publish_small(tmp_path, traces={"bad": np.array(["a", "b"])})


def test_empty_store_says_how_to_train(tmp_path):
    with pytest.raises(NoPosteriorError, match=r"python -m training train --preset default"):
        open_posterior(tmp_path / "nowhere")
    assert latest_version(tmp_path) is None
    assert list_versions(tmp_path) == []


def test_unknown_version(tmp_path):
    publish_small(tmp_path)
    with pytest.raises(VersionNotFoundError, match="python -m storage list"):
        open_posterior(tmp_path, "20200101T000000.000000Z-abcd")
    with pytest.raises(VersionNotFoundError, match="not a version id"):
        open_posterior(tmp_path, "../../etc")


def test_latest_moves_and_ids_sort_by_time(tmp_path):
    first = publish_small(tmp_path, seed=1)
    second = publish_small(tmp_path, seed=2)
    assert first < second == latest_version(tmp_path)
    infos = list_versions(tmp_path)
    assert [i.version for i in infos] == [first, second]
    assert [i.is_latest for i in infos] == [False, True]
    assert open_posterior(tmp_path, first).diagnostics == {"seed": 1}
    # A publisher that died between renaming its folder and moving the pointer: the pointer
    # names an older version, which stays `latest` until the next publish.
    (tmp_path / "latest").write_text(first + "\n")
    assert latest_version(tmp_path) == first
    (tmp_path / "latest").unlink()  # no pointer at all: the newest version
    assert latest_version(tmp_path) == second


def test_version_ids_never_go_backwards():
    newer = "20261127T080000.000000Z-ffff"
    earlier = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    fresh = layout.new_version_id(after=newer, now=earlier)
    assert fresh > newer and layout.is_version_id(fresh)


def _flip_byte(path, offset=-1):
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("name", ["movie_embeddings.npy", "users.npy", "movies.json"])
def test_tampered_file_is_named_and_refused(tmp_path, name):
    version = publish_small(tmp_path)
    _flip_byte(tmp_path / "versions" / version / name)
    with pytest.raises(CorruptVersionError, match=name) as info:
        open_posterior(tmp_path)
    assert info.value.file == name and info.value.version == version
    assert "checksum" in str(info.value)


def test_truncated_file_is_named_even_without_hashing(tmp_path):
    version = publish_small(tmp_path)
    path = tmp_path / "versions" / version / "users.npy"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CorruptVersionError, match=r"users\.npy.*truncated"):
        open_posterior(tmp_path, verify=False)


def test_missing_file_is_named(tmp_path):
    version = publish_small(tmp_path)
    (tmp_path / "versions" / version / "traces" / "target_log_prob.npy").unlink()
    with pytest.raises(CorruptVersionError, match=r"traces/target_log_prob\.npy is missing"):
        open_posterior(tmp_path, verify=False)


def test_bad_manifest_is_named(tmp_path):
    version = publish_small(tmp_path)
    manifest = tmp_path / "versions" / version / "manifest.json"
    content = json.loads(manifest.read_text())
    del content["files"]["users.npy"]
    manifest.write_text(json.dumps(content))
    with pytest.raises(CorruptVersionError, match=r"manifest\.json.*users\.npy"):
        open_posterior(tmp_path)
    manifest.write_text("{not json")
    with pytest.raises(CorruptVersionError, match=r"manifest\.json"):
        open_posterior(tmp_path, verify=False)
    manifest.unlink()
    with pytest.raises(CorruptVersionError, match=r"manifest\.json is missing"):
        open_posterior(tmp_path)
    assert list_versions(tmp_path)[0].error is not None


def test_header_that_disagrees_with_manifest_is_refused(tmp_path):
    version = publish_small(tmp_path)
    folder = tmp_path / "versions" / version
    manifest = json.loads((folder / "manifest.json").read_text())
    # Same size, wrong shape: a swapped file passes the size check but not the header check.
    np.save(folder / "movie_ids.npy", np.zeros(20, np.float64))
    entry = manifest["files"]["movie_ids.npy"]
    assert (folder / "movie_ids.npy").stat().st_size == entry["bytes"]
    with pytest.raises(CorruptVersionError, match=r"movie_ids\.npy"):
        open_posterior(tmp_path, verify=False)


def test_unreadable_movies_json_is_named_without_hashing(tmp_path):
    version = publish_small(tmp_path)
    path = tmp_path / "versions" / version / "movies.json"
    path.write_bytes(b"x" * path.stat().st_size)  # same size: only the checksum would catch it
    with pytest.raises(CorruptVersionError, match=r"movies\.json cannot be read"):
        open_posterior(tmp_path, verify=False)
