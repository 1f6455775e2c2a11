"""The job runner with a fake training program: outcomes, cancel, FIFO, recovery, lock."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time

import pytest

from app.jobs.process import is_job_process
from app.jobs.runner import GONE_AFTER_RESTART, NEVER_STARTED
from storage.job_store import JobStore
from tests.helpers.job_helpers import fake_runner, kill_leftovers, wait_finished, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def store_dir(tmp_path):
    return tmp_path / "store"


@pytest.fixture
def runners():
    started = []
    yield started
    for r in started:
        r.stop()
        kill_leftovers(r.store_dir)


def _start(runners, store_dir, **options):
    runner = fake_runner(store_dir, **options)
    runners.append(runner)
    runner.start()
    return runner


def test_success_records_progress_version_log_and_reloads(store_dir, runners):
    reloaded = []
    runner = _start(runners, store_dir, on_success=reloaded.append)
    job = runner.store.create(config={"preset": "smoke", "data": "fake:succeed:0.2"})
    runner.wake()
    done = wait_finished(runner.store, job.id)
    assert done.status == "succeeded"
    assert done.version == f"fake-{job.id[:8]}"
    assert done.phase == "sampling" and done.iteration == done.total == 4
    assert done.leapfrog_per_s == 100.0 and done.acceptance == 0.7
    log = (store_dir / "jobs" / f"{job.id}.log").read_text()
    assert "--run-id" in log and job.id in log and "--preset smoke" in log
    assert done.log_path == str(store_dir / "jobs" / f"{job.id}.log")
    wait_for(lambda: reloaded == [done.version], what="reload callback")


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("fail", "fake training failed on purpose"),
        ("exit", "exited with code 3 without reporting a result"),
        ("sigkill", "killed by SIGKILL (out of memory"),
    ],
)
def test_failures_name_the_reason(store_dir, runners, mode, expected):
    reloaded = []
    runner = _start(runners, store_dir, on_success=reloaded.append)
    job = runner.store.create(config={"data": f"fake:{mode}"})
    done = wait_finished(runner.store, job.id)
    assert done.status == "failed"
    assert expected in done.error
    assert done.version is None and reloaded == []


def test_cancel_stops_a_running_job_with_sigterm(store_dir, runners):
    runner = _start(runners, store_dir)
    job = runner.store.create(config={"data": "fake:sleep:30"})
    running = wait_for(lambda: (j := runner.store.get(job.id)).iteration and j, what="progress")
    t0 = time.monotonic()
    runner.store.request_cancel(job.id)
    done = wait_finished(runner.store, job.id)
    assert done.status == "cancelled" and done.version is None
    assert time.monotonic() - t0 < 3  # SIGTERM handled at the next step, no grace wait
    assert not is_job_process(running.pid, job.id)
    assert "stopped:" in (store_dir / "jobs" / f"{job.id}.log").read_text()


def test_cancel_escalates_to_sigkill_after_the_grace_period(store_dir, runners):
    runner = _start(runners, store_dir, cancel_grace_s=0.5)
    job = runner.store.create(config={"data": "fake:stubborn:30"})
    log = store_dir / "jobs" / f"{job.id}.log"
    wait_for(lambda: log.exists() and "ignoring SIGTERM" in log.read_text(), what="SIG_IGN")
    t0 = time.monotonic()
    runner.store.request_cancel(job.id)
    done = wait_finished(runner.store, job.id)
    assert done.status == "cancelled"
    assert 0.5 <= time.monotonic() - t0 < 5


def test_jobs_run_one_at_a_time_in_fifo_order(store_dir, runners):
    store = JobStore(store_dir / "jobs.sqlite3")
    ids = [store.create(config={"data": "fake:succeed:0.1"}).id for _ in range(3)]
    runner = _start(runners, store_dir)
    jobs = [wait_finished(runner.store, i) for i in ids]
    assert [j.status for j in jobs] == ["succeeded"] * 3
    for before, after in itertools.pairwise(jobs):
        assert before.finished_at <= after.started_at


def test_max_concurrent_runs_jobs_side_by_side(store_dir, runners):
    store = JobStore(store_dir / "jobs.sqlite3")
    ids = [store.create(config={"data": "fake:sleep:1.0"}).id for _ in range(2)]
    runner = _start(runners, store_dir, max_concurrent=2)
    first, second = (wait_finished(runner.store, i) for i in ids)
    assert second.started_at < first.finished_at


def test_restart_reattaches_a_live_job_and_fails_dead_ones(store_dir, runners):
    first = _start(runners, store_dir)
    live = first.store.create(config={"data": "fake:sleep:1.5"})
    pid = wait_for(lambda: (j := first.store.get(live.id)).iteration and j.pid, what="progress")
    first.stop()  # the server goes away; the job process keeps running
    assert is_job_process(pid, live.id)

    store = first.store
    dead = store.create(config={"data": "fake:succeed"})
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store.mark_running(dead.id, pid=gone.pid)
    unstarted = store.create(config={"data": "fake:succeed"})
    store.mark_running(unstarted.id)

    second = _start(runners, store_dir)
    assert second.active
    assert store.get(dead.id).status == "failed"
    assert store.get(dead.id).error == GONE_AFTER_RESTART
    assert store.get(unstarted.id).error == NEVER_STARTED
    assert store.get(live.id).status == "running"
    assert wait_finished(store, live.id).status == "succeeded"


def test_restart_reattached_job_can_be_cancelled(store_dir, runners):
    first = _start(runners, store_dir)
    job = first.store.create(config={"data": "fake:sleep:30"})
    pid = wait_for(lambda: (j := first.store.get(job.id)).iteration and j.pid, what="progress")
    first.stop()
    second = _start(runners, store_dir)
    second.store.request_cancel(job.id)
    assert wait_finished(second.store, job.id).status == "cancelled"
    wait_for(lambda: not is_job_process(pid, job.id), what="process exit")


def test_only_one_runner_holds_the_lock_and_another_takes_over(store_dir, runners):
    a = _start(runners, store_dir)
    b = _start(runners, store_dir)
    assert a.active and not b.active
    a.stop()
    wait_for(lambda: b.active, what="takeover")
    job = b.store.create(config={"data": "fake:succeed"})
    assert wait_finished(b.store, job.id).status == "succeeded"


def test_resumed_job_reruns_with_resume_and_the_same_run_id(store_dir, runners):
    runner = _start(runners, store_dir)
    job = runner.store.create(config={"data": "fake:failonce"})
    assert wait_finished(runner.store, job.id).status == "failed"
    runner.store.requeue(job.id)
    runner.wake()
    done = wait_finished(runner.store, job.id)
    assert done.status == "succeeded" and done.version.endswith("-resumed")
    assert done.attempts == 2 and done.error is None
    attempts = [
        line
        for line in (store_dir / "jobs" / f"{job.id}.log").read_text().splitlines()
        if line.startswith("=== attempt")
    ]
    assert len(attempts) == 2
    assert "--resume" not in attempts[0] and attempts[1].endswith("--resume")
    assert all(f"--run-id {job.id}" in a for a in attempts)


def test_sigterm_from_outside_fails_the_job(store_dir, runners):
    runner = _start(runners, store_dir)
    job = runner.store.create(config={"data": "fake:sleep:30"})
    pid = wait_for(lambda: runner.store.get(job.id).iteration and runner.store.get(job.id).pid)
    os.kill(pid, signal.SIGTERM)
    done = wait_finished(runner.store, job.id)
    assert done.status == "failed"
    assert "exited with code 143" in done.error
