"""Store faults: a full disk or an unwritable store fails the publish cleanly.

Tests run as root, and `chmod` does not stop root from writing, so an unwritable store is
simulated two ways: an `OSError(EROFS)` injected where the publisher creates its folder,
and, where the test may mount (root with CAP_SYS_ADMIN), a real read-only bind mount of
the store. A full disk is an `OSError(ENOSPC)` injected into the publisher's file writes
after part of the file reached the disk.
"""

from __future__ import annotations

import errno
import gc
import os
import pathlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from app.serving.model_state import ModelHolder
from storage import fsio
from storage.posterior import latest_version, list_versions, open_posterior
from tests.helpers.app_helpers import Published, publish, tiny_data


def assert_store_unchanged(store: Path, good: Published) -> None:
    """`latest` still names `good`, every listed version verifies, no temp folder is left,
    and `good`'s samples are byte-identical to what was published."""
    assert latest_version(store) == good.version
    for info in list_versions(store):
        assert info.error is None, info
        open_posterior(store, info.version, verify=True).close()
    leftovers = [n for n in os.listdir(store / "versions") if n.startswith(".")]
    assert leftovers == [], leftovers
    version = open_posterior(store, verify=True)
    try:
        for name, array in version.samples().items():
            np.testing.assert_array_equal(array, good.samples[name])
    finally:
        version.close()


@pytest.fixture
def store_with_version(tmp_path) -> tuple[Path, Published]:
    store = tmp_path / "store"
    return store, publish(store, tiny_data(num_users=12, num_movies=10), seed=1)


@pytest.mark.parametrize(
    "failing_file",
    ["users.npy", "movie_bias.npy", "movies.json", "files/plots/trace.png", "manifest.json"],
)
def test_full_disk_while_writing_fails_the_publish_cleanly(
    store_with_version, monkeypatch, failing_file
):
    store, good = store_with_version
    real_write = fsio.write_chunks

    def disk_fills_up(path: Path, chunks):
        if path.as_posix().endswith(failing_file):
            with open(path, "xb") as f:  # part of the file reaches the disk, then ENOSPC
                f.write(b"\x93NUMPY partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_write(path, chunks)

    monkeypatch.setattr(fsio, "write_chunks", disk_fills_up)
    with pytest.raises(OSError) as raised:
        publish(store, good.data, seed=2)
    assert raised.value.errno == errno.ENOSPC
    assert [v.version for v in list_versions(store)] == [good.version]
    assert_store_unchanged(store, good)


def test_full_disk_when_moving_latest_leaves_latest_on_the_old_version(
    store_with_version, monkeypatch
):
    """The new version folder is complete when the pointer write fails: `latest` (what
    servers follow) keeps naming the old version."""
    store, good = store_with_version

    def no_space(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(fsio, "atomic_write_text", no_space)
    with pytest.raises(OSError):
        publish(store, good.data, seed=2)
    assert_store_unchanged(store, good)
    holder = ModelHolder(store)
    try:
        assert holder.refresh().served_version == good.version
    finally:
        holder.stop()


def test_read_only_store_fails_the_publish_cleanly(store_with_version, monkeypatch):
    store, good = store_with_version
    real_mkdir = pathlib.Path.mkdir

    def read_only(self: Path, *args, **kwargs) -> None:
        if self.is_relative_to(store) and not self.exists():
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", read_only)
    with pytest.raises(OSError) as raised:
        publish(store, good.data, seed=2)
    assert raised.value.errno == errno.EROFS
    assert_store_unchanged(store, good)


@pytest.fixture
def read_only_view(store_with_version, tmp_path) -> Iterator[tuple[Path, Published]]:
    """The store bind-mounted read-only (skipped where this process may not mount)."""
    store, good = store_with_version
    view = tmp_path / "read-only-store"
    view.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(store), str(view)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {mounted.stderr.decode().strip()}")
    try:
        remount = ["mount", "-o", "remount,bind,ro", str(view)]
        assert subprocess.run(remount, capture_output=True).returncode == 0
        yield view, good
    finally:
        gc.collect()  # drop memory maps of the store's files, or the unmount is refused
        if subprocess.run(["umount", str(view)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", str(view)], check=True)


def test_read_only_mount_refuses_the_publish_and_still_serves(read_only_view):
    view, good = read_only_view
    with pytest.raises(OSError) as raised:
        publish(view, good.data, seed=2)
    assert raised.value.errno == errno.EROFS
    assert_store_unchanged(view, good)
    holder = ModelHolder(view)  # its pin cannot be written: it serves unpinned
    try:
        outcome = holder.refresh()
        assert outcome.served_version == good.version and outcome.error is None
    finally:
        holder.stop()
