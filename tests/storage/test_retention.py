"""Retention: gc keeps the newest N, `latest`, the newest converged version, versions pinned
by live processes or held by an operator, and checkpoints of jobs that can resume; it runs
after every publish."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from storage import cli as storage_cli
from storage import layout
from storage.errors import NoPosteriorError
from storage.job_store import JobStore, default_db_path
from storage.posterior import StoreError, gc, list_versions, open_posterior, pin
from storage.retention import default_keep, hold, holds, live_pins, unpin
from tests.helpers.storage_helpers import publish_small


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


def _converged(flag: bool) -> dict:
    return {"converged": flag, "thresholds": {}, "figures": {}, "failures": []}


def test_every_publish_collects_down_to_the_keep_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("SHARDLENS_KEEP_VERSIONS", "2")
    published = [publish_small(tmp_path, seed=s) for s in range(4)]
    assert sorted(v.version for v in list_versions(tmp_path)) == published[2:]


def test_a_failing_gc_does_not_fail_the_publish(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("SHARDLENS_KEEP_VERSIONS", "many")
    version = publish_small(tmp_path)
    assert open_posterior(tmp_path, "latest").version == version
    assert "SHARDLENS_KEEP_VERSIONS" in caplog.text


def test_gc_keeps_the_newest_converged_version(tmp_path):
    old = publish_small(tmp_path, seed=0, convergence=_converged(True))
    newer = [publish_small(tmp_path, seed=s, convergence=_converged(False)) for s in (1, 2)]
    report = gc(tmp_path, keep=1)
    assert report.kept == [old, newer[1]] and report.removed == [newer[0]]


def test_a_held_version_survives_gc_until_released(tmp_path, five):
    assert storage_cli.main(["pin", five[0], "--store", str(tmp_path)]) == 0
    assert holds(tmp_path) == [five[0]]
    assert five[0] in gc(tmp_path, keep=1).kept  # a hold has no process to outlive
    assert storage_cli.main(["pin", five[0], "--remove", "--store", str(tmp_path)]) == 0
    assert five[0] in gc(tmp_path, keep=1).removed
    assert storage_cli.main(["pin", five[0], "--remove", "--store", str(tmp_path)]) == 3


def test_a_hold_on_an_unknown_version_is_refused(tmp_path, five):
    with pytest.raises(NoPosteriorError):
        hold(tmp_path, "20990101T000000.000000Z-abcd")


def test_gc_removes_only_checkpoints_of_jobs_that_cannot_resume(tmp_path, five):
    jobs = JobStore(default_db_path(tmp_path))
    ids = {}
    for status in ("succeeded", "failed", "cancelled", "running", "queued"):
        job = jobs.create(config={"preset": "smoke"})
        if status != "queued":
            jobs.mark_running(job.id)
        if status in ("succeeded", "failed"):
            jobs.finish(job.id, status, version=five[-1] if status == "succeeded" else None)
        if status == "cancelled":
            jobs.request_cancel(job.id)
            jobs.finish(job.id, "cancelled")
        ids[status] = job.id
        (layout.checkpoints_dir(tmp_path) / job.id).mkdir(parents=True)
    (layout.checkpoints_dir(tmp_path) / "cli-run").mkdir()  # `train --run-id cli-run`
    report = gc(tmp_path, keep=5)
    assert report.removed_checkpoints == [ids["succeeded"]]
    left = sorted(p.name for p in layout.checkpoints_dir(tmp_path).iterdir())
    assert left == sorted([*(v for k, v in ids.items() if k != "succeeded"), "cli-run"])
