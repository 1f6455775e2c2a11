"""Retention: gc keeps the newest N, `latest`, and versions pinned by live processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from storage import layout
from storage.posterior import StoreError, gc, list_versions, open_posterior, pin
from storage.retention import default_keep, live_pins, unpin
from tests.storage_helpers import publish_small


@pytest.fixture
def five(tmp_path):
    return [publish_small(tmp_path, seed=s) for s in range(5)]


def test_gc_keeps_newest_latest_and_pinned(tmp_path, five):
    with pin(tmp_path, five[1]) as held:
        assert held.version == five[1]
        assert live_pins(tmp_path) == {five[1]: 1}
        report = gc(tmp_path, keep=2)
        assert sorted(report.removed) == [five[0], five[2]]
        assert sorted(report.kept) == [five[1], five[3], five[4]]
        assert [i.version for i in list_versions(tmp_path)] == [five[1], five[3], five[4]]
        assert open_posterior(tmp_path, five[1]).version == five[1]
        assert [i.pins for i in list_versions(tmp_path)] == [1, 0, 0]
    assert live_pins(tmp_path) == {}
    assert gc(tmp_path, keep=2).removed == [five[1]]


def test_gc_never_removes_the_version_latest_points_to(tmp_path, five):
    layout.latest_path(tmp_path).write_text(five[0] + "\n")  # e.g. a rollback
    report = gc(tmp_path, keep=1)
    assert sorted(report.kept) == [five[0], five[4]]
    assert open_posterior(tmp_path).version == five[0]


def test_pin_latest_and_unpin(tmp_path, five):
    handle = pin(tmp_path)
    assert handle.version == five[4]
    unpin(handle)
    unpin(handle)  # idempotent
    assert live_pins(tmp_path) == {}


def test_pins_of_dead_processes_are_ignored_and_cleaned(tmp_path, five):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    folder = layout.pins_dir(tmp_path) / five[0]
    folder.mkdir(parents=True)
    (folder / f"{int(dead.stdout)}-{layout.host_tag()}-abcd").write_text("dead\n")
    assert live_pins(tmp_path) == {}
    assert five[0] in gc(tmp_path, keep=1).removed
    assert not folder.exists()


def test_keep_setting(monkeypatch, tmp_path):
    monkeypatch.delenv("SHARDLENS_KEEP_VERSIONS", raising=False)
    assert default_keep() == 5
    monkeypatch.setenv("SHARDLENS_KEEP_VERSIONS", "2")
    assert default_keep() == 2
    monkeypatch.setenv("SHARDLENS_KEEP_VERSIONS", "zero")
    with pytest.raises(StoreError, match="SHARDLENS_KEEP_VERSIONS"):
        default_keep()
    with pytest.raises(StoreError, match="at least 1"):
        gc(tmp_path, keep=0)


def test_gc_default_keep_from_setting(monkeypatch, tmp_path, five):
    monkeypatch.setenv("SHARDLENS_KEEP_VERSIONS", "3")
    assert sorted(gc(tmp_path).removed) == five[:2]


def test_owners_on_other_hosts_count_as_live(tmp_path, five):
    """A pin or temp folder from another container sharing the store cannot be checked."""
    folder = layout.pins_dir(tmp_path) / five[0]
    folder.mkdir(parents=True)
    (folder / "1-someotherhost-abcd").write_text("\n")
    temp = layout.versions_dir(tmp_path) / ".tmp-999999-someotherhost-abcd"
    temp.mkdir()
    report = gc(tmp_path, keep=1)
    assert five[0] in report.kept and report.removed_temp == []
    old = time.time() - 2 * 24 * 3600
    os.utime(temp, (old, old))
    assert gc(tmp_path, keep=1).removed_temp == [temp.name]
