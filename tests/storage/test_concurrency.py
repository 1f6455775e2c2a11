"""Atomic publishing: a killed writer leaves nothing visible; concurrent writers are safe."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from storage import layout
from storage.posterior import gc, latest_version, list_versions, open_posterior
from tests.helpers.storage_helpers import publish_small, spawn_helper


@pytest.mark.slow
@pytest.mark.parametrize("files_written", [0, 3])
def test_sigkill_mid_publish_leaves_no_visible_version(tmp_path, files_written):
    before = publish_small(tmp_path, seed=1)
    writer = spawn_helper("slow_publisher", str(tmp_path), str(files_written))
    try:
        # Wait until it is inside its first file, or has written a few, then kill it.
        for _ in range(max(1, files_written)):
            line = writer.stdout.readline()
            assert line.startswith("wrote "), line
        temp = [p for p in layout.versions_dir(tmp_path).iterdir() if p.name.startswith(".tmp-")]
        assert len(temp) == 1 and any(temp[0].iterdir())
        assert layout.tmp_owner(temp[0].name) == (writer.pid, layout.host_tag())
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
        writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL
    assert [i.version for i in list_versions(tmp_path)] == [before]
    assert latest_version(tmp_path) == before
    assert open_posterior(tmp_path).version == before
    report = gc(tmp_path, keep=5)
    assert report.removed_temp == [temp[0].name] and report.removed == []
    assert sorted(os.listdir(layout.versions_dir(tmp_path))) == [before]


def test_gc_leaves_temp_folders_of_live_publishers(tmp_path):
    publish_small(tmp_path)
    live = layout.versions_dir(tmp_path) / layout.tmp_name()  # this process: alive
    live.mkdir()
    assert gc(tmp_path, keep=1).removed_temp == []
    assert live.is_dir()


@pytest.mark.slow
def test_concurrent_publishers_threads_and_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("SHARDLENS_KEEP_VERSIONS", "100")  # every version stays to be counted
    publish_small(tmp_path, seed=0)  # creates the store before the race starts
    procs = [
        spawn_helper("repeat_publisher", str(tmp_path), "5", str(100 * (p + 1))) for p in range(2)
    ]
    errors: list[BaseException] = []
    thread_ids: list[str] = []

    def publish_some(seed: int) -> None:
        try:
            for k in range(5):
                thread_ids.append(publish_small(tmp_path, seed=seed + k))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=publish_some, args=(10 * (t + 1),)) for t in range(2)]
    for t in threads:
        t.start()
    # A reader keeps opening `latest` while the publishers race.
    deadline = time.monotonic() + 60
    opened, seen = 0, [layout.read_latest(tmp_path)]
    while any(t.is_alive() for t in threads) or any(p.poll() is None for p in procs):
        post = open_posterior(tmp_path, verify=False)
        assert post.num_users == 30
        seen.append(layout.read_latest(tmp_path))
        assert seen[-1] >= seen[-2], "latest went backwards"
        opened += 1
        assert time.monotonic() < deadline
    for t in threads:
        t.join()
    process_ids = []
    for p in procs:
        out, _ = p.communicate()
        assert p.returncode == 0
        process_ids += out.split()
    assert not errors
    versions = [i.version for i in list_versions(tmp_path)]
    assert len(versions) == 1 + 10 + 10 == len(set(versions))
    assert set(thread_ids + process_ids) <= set(versions)
    assert latest_version(tmp_path) == max(versions) == layout.read_latest(tmp_path)
    for version in versions:
        open_posterior(tmp_path, version, verify=True)
    leftovers = [n for n in os.listdir(layout.versions_dir(tmp_path)) if n.startswith(".")]
    assert leftovers == [] and opened > 0
