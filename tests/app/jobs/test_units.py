"""Pure pieces of the job machinery: data source checks, argv, exit reasons, log tails,
the lock, and the training side's reporter."""

from __future__ import annotations

import os
import signal

import pytest

from app.jobs.command import training_command
from app.jobs.lock import RunnerLock
from app.jobs.logs import tail_lines
from app.jobs.process import describe_exit, is_job_process
from app.jobs.source_check import DataSourceError, validate_source
from storage.job_store import JobStore
from tests.helpers.job_helpers import wait_for
from training.run.job_reporting import JobInterrupted, JobReporter, install_sigterm_handler


@pytest.mark.parametrize(
    "name",
    ["synthetic", "synthetic:users=40,movies=30", "ml-1m", "ml-100k", "tfds:movielens/1m-ratings"],
)
def test_named_sources_pass_unchanged(tmp_path, name):
    assert validate_source(name, data_root=tmp_path / "missing-root") == name


def test_paths_inside_the_root_resolve_to_absolute_paths(tmp_path):
    root = tmp_path / "data"
    (root / "ml-1m").mkdir(parents=True)
    (root / "link").symlink_to(root / "ml-1m")
    expected = str((root / "ml-1m").resolve())
    assert validate_source("ml-1m/", data_root=root) == expected
    assert validate_source(str(root / "ml-1m"), data_root=root) == expected
    assert validate_source("link", data_root=root) == expected
    assert validate_source("./x/../ml-1m", data_root=root) == expected


@pytest.mark.parametrize("source", ["../secret", "ml-1m/../../secret", "/etc/passwd", "escape"])
def test_paths_outside_the_root_are_refused(tmp_path, source):
    root = tmp_path / "data"
    (root / "ml-1m").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (root / "escape").symlink_to(tmp_path / "secret")
    with pytest.raises(DataSourceError, match="outside the data root"):
        validate_source(source, data_root=root)


def test_missing_path_and_empty_source_are_refused(tmp_path):
    with pytest.raises(DataSourceError, match="does not exist"):
        validate_source("nope.zip", data_root=tmp_path)
    with pytest.raises(DataSourceError, match="empty"):
        validate_source("  ", data_root=tmp_path)
    with pytest.raises(DataSourceError, match="does not exist"):
        validate_source("tfds:", data_root=tmp_path)  # no dataset name: taken as a path


def test_training_command_maps_config_to_flags():
    argv = training_command(
        {"preset": "smoke", "data": "synthetic", "num_chains": 4, "seed": None},
        job_id="abc",
        store_dir="/s",
        db_path="/s/jobs.sqlite3",
        data_root="/d",
        resume=True,
        program=("py", "-m", "training", "train"),
    )
    assert argv == [
        "py", "-m", "training", "train", "--preset", "smoke", "--data", "synthetic",
        "--num-chains", "4", "--store", "/s", "--run-id", "abc", "--data-root", "/d",
        "--job-id", "abc", "--jobs-db", "/s/jobs.sqlite3", "--resume",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="unknown keys"):
        training_command({"step_size": 1}, job_id="a", store_dir="s", db_path="d")


@pytest.mark.parametrize(("force", "expected"), [(True, ["--force-publish"]), (False, [])])
def test_force_publish_is_a_switch(force, expected):
    argv = training_command(
        {"preset": "smoke", "force_publish": force},
        job_id="j",
        store_dir="/s",
        db_path="/d",
        program=("train",),
    )
    assert argv[:3] == ["train", "--preset", "smoke"]
    assert argv[3:-8] == expected  # before --store S --run-id J --job-id J --jobs-db D


def test_describe_exit_names_signals_and_codes():
    assert "SIGKILL (out of memory" in describe_exit(-signal.SIGKILL)
    assert describe_exit(-signal.SIGTERM).endswith("killed by SIGTERM")
    assert "code 2" in describe_exit(2)
    assert "unknown" in describe_exit(None)


def test_is_job_process_checks_the_command_line(tmp_path):
    import os
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "job-42"])
    try:
        # Popen may return while the child is still inside execve (empty cmdline for a moment).
        wait_for(lambda: is_job_process(child.pid, "job-42"), timeout_s=10, what="exec")
        assert not is_job_process(child.pid, "job-43")
    finally:
        child.kill()
        child.wait()
    assert not is_job_process(child.pid, "job-42")
    assert not is_job_process(os.getpid(), "job-42")


def test_tail_lines_reads_the_end_of_large_files(tmp_path):
    path = tmp_path / "x.log"
    path.write_text("".join(f"line {i}\n" for i in range(5000)))
    assert tail_lines(path, 3) == ["line 4997", "line 4998", "line 4999"]
    assert tail_lines(path, 6000)[0] == "line 0"
    assert tail_lines(tmp_path / "missing.log", 5) == []
    assert tail_lines(path, 0) == []


def test_runner_lock_is_exclusive_and_released_on_close(tmp_path):
    a, b = RunnerLock(tmp_path / "r.lock"), RunnerLock(tmp_path / "r.lock")
    assert a.try_acquire() and a.try_acquire()
    assert not b.try_acquire()
    assert (tmp_path / "r.lock").read_text() == f"{os.getpid()}\n"  # b's try left a's pid
    a.release()
    assert not a.held and b.try_acquire() and b.held
    b.release()


def test_reporter_writes_progress_and_final_status(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    job = store.mark_running(store.create(config={}).id, pid=1)
    reporter = JobReporter(job_id=job.id, db_path=store.db_path)
    reporter({"phase": "burnin", "iteration": 20, "total": 60, "eta_s": 3.5, "extra": 1})
    got = store.get(job.id)
    assert (got.phase, got.iteration, got.total, got.eta_s) == ("burnin", 20, 60, 3.5)
    reporter.succeeded("v1")
    assert store.get(job.id).status == "succeeded" and store.get(job.id).version == "v1"
    with pytest.raises(JobInterrupted, match="not running"):
        reporter({"phase": "saving", "iteration": 60, "total": 60})


def test_reporter_stops_on_cancel_flag_and_on_sigterm(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    job = store.mark_running(store.create(config={}).id, pid=1)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        stop = install_sigterm_handler()
        reporter = JobReporter(job_id=job.id, db_path=store.db_path, stop=stop)
        reporter({"phase": "burnin", "iteration": 1, "total": 2})
        signal.raise_signal(signal.SIGTERM)
        assert stop.is_set()
        with pytest.raises(JobInterrupted, match="SIGTERM"):
            reporter({"phase": "burnin", "iteration": 2, "total": 2})
        with pytest.raises(JobInterrupted, match="second SIGTERM"):
            signal.raise_signal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    store.request_cancel(job.id)
    with pytest.raises(JobInterrupted, match="cancelled"):
        JobReporter(job_id=job.id, db_path=store.db_path).check()
