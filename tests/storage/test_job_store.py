"""Job records: lifecycle, validated transitions, paging, and use across processes."""

from __future__ import annotations

import sqlite3

import pytest

from storage.job_record import InvalidTransitionError, JobError, JobNotFoundError
from storage.job_schema import SCHEMA_VERSION
from storage.job_store import JobStore
from tests.helpers.storage_helpers import spawn_helper


@pytest.fixture
def jobs(tmp_path):
    return JobStore(tmp_path / "jobs.sqlite3")


def test_lifecycle(jobs):
    job = jobs.create(config={"preset": "smoke", "devices": 8}, log_path="/tmp/job.log")
    assert (job.status, job.kind, job.config, job.attempts) == ("queued", "train", {"preset": "smoke", "devices": 8}, 0)  # fmt: skip
    running = jobs.mark_running(job.id, pid=1234)
    assert running.status == "running" and running.pid == 1234 and running.started_at
    assert jobs.update_progress(job.id, {"phase": "burnin", "iteration": 5, "total": 100,
                                         "leapfrog_per_s": 80.5, "acceptance": 0.7,
                                         "step_size": 0.01, "eta_s": 12.0, "other": 1})  # fmt: skip
    progress = jobs.get(job.id).progress
    assert progress["phase"] == "burnin" and progress["iteration"] == 5
    assert progress["leapfrog_per_s"] == 80.5 and progress["updated_at"] is not None
    done = jobs.finish(job.id, "succeeded", version="20261127T073000.000000Z-abcd")
    assert done.status == "succeeded" and done.finished and done.finished_at >= done.started_at
    assert done.version == "20261127T073000.000000Z-abcd"
    assert not jobs.update_progress(job.id, {"iteration": 6})
    assert jobs.get(job.id).iteration == 5
    assert done.to_dict()["config"] == {"preset": "smoke", "devices": 8}


def test_transitions_are_validated(jobs):
    job = jobs.create(config={})
    with pytest.raises(InvalidTransitionError, match="queued"):
        jobs.finish(job.id, "succeeded")
    with pytest.raises(InvalidTransitionError, match="finish needs"):
        jobs.finish(job.id, "running")
    jobs.mark_running(job.id)
    with pytest.raises(InvalidTransitionError, match="running"):
        jobs.mark_running(job.id)
    jobs.finish(job.id, "failed", error="boom")
    assert jobs.get(job.id).error == "boom"
    with pytest.raises(InvalidTransitionError, match="failed and cannot be running"):
        jobs.mark_running(job.id)
    again = jobs.requeue(job.id)
    assert again.status == "queued" and again.finished_at is None and again.attempts == 1
    assert jobs.mark_running(again.id).attempts == 2
    jobs.finish(job.id, "succeeded")
    with pytest.raises(InvalidTransitionError, match="succeeded"):
        jobs.requeue(job.id)
    with pytest.raises(JobNotFoundError, match="nope"):
        jobs.get("nope")
    with pytest.raises(JobNotFoundError):
        jobs.update_progress("nope", {"iteration": 1})


def test_cancel(jobs):
    queued = jobs.create(config={})
    assert jobs.request_cancel(queued.id).status == "cancelled"
    running = jobs.create(config={})
    jobs.mark_running(running.id, pid=1)
    flagged = jobs.request_cancel(running.id)
    assert flagged.status == "running" and flagged.cancel_requested
    assert jobs.finish(running.id, "cancelled").status == "cancelled"
    assert jobs.claim_next_queued() is None


def test_list_is_paged_newest_first(jobs):
    ids = [jobs.create(config={"n": n}).id for n in range(7)]
    page = jobs.list(limit=3, offset=0)
    assert page.total == 7 and [j.id for j in page.jobs] == ids[::-1][:3]
    assert [j.id for j in jobs.list(limit=3, offset=6).jobs] == [ids[0]]
    jobs.mark_running(ids[2])
    assert jobs.list(status="running").total == 1
    assert [j.id for j in jobs.list_by_status("queued")] == [i for i in ids if i != ids[2]]
    with pytest.raises(JobError, match="unknown job status"):
        jobs.list(status="bogus")


def test_claim_is_fifo(jobs):
    first, second = jobs.create(config={}), jobs.create(config={})
    assert jobs.claim_next_queued(pid=9).id == first.id
    assert jobs.claim_next_queued().id == second.id
    assert jobs.claim_next_queued() is None


def test_schema_is_versioned(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    JobStore(path).create(config={})
    JobStore(path)  # reopening keeps the data and does not migrate twice
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 1
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(JobError, match="upgrade shardlens"):
        JobStore(path)


def test_a_database_of_the_first_schema_gains_the_scheduler_columns(tmp_path):
    from storage.job_schema import MIGRATIONS

    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
        conn.execute(
            "INSERT INTO jobs (id, kind, status, config, created_at) "
            "VALUES ('old', 'train', 'queued', '{}', 1.0)"
        )
    job = JobStore(path).get("old")
    assert (job.backend, job.external_id, job.scheduler_state) == ("local", None, None)


def test_a_job_pending_in_its_scheduler_shows_as_queued(jobs):
    job = jobs.create(config={}, backend="slurm")
    assert job.backend == "slurm" and job.external_id is None
    jobs.mark_running(job.id)
    jobs.set_external_id(job.id, "42")
    pending = jobs.set_scheduler_state(job.id, state="pending", reason="Resources")
    assert (pending.status, pending.effective_status) == ("running", "queued")
    assert (pending.external_id, pending.scheduler_reason) == ("42", "Resources")
    assert [j.id for j in jobs.list(status="queued").jobs] == [job.id]
    assert jobs.list(status="running").total == 0
    running = jobs.set_scheduler_state(job.id, state="running", reason=None, started_at=123.0)
    assert running.effective_status == "running" and running.started_at == 123.0
    assert jobs.list(status="running").total == 1 and jobs.list(status="queued").total == 0
    jobs.finish(job.id, "failed", error="TIMEOUT")
    ended = jobs.set_scheduler_state(job.id, state="timeout", reason="TimeLimit")
    assert ended.effective_status == "failed" and ended.scheduler_state == "timeout"
    again = jobs.requeue(job.id)  # a new attempt: a new scheduler job
    assert (again.external_id, again.scheduler_state, again.scheduler_reason) == (None, None, None)
    with pytest.raises(InvalidTransitionError, match="queued"):
        jobs.set_external_id(job.id, "43")


@pytest.mark.slow
def test_progress_written_by_another_process_is_read_here(jobs):
    job = jobs.create(config={})
    jobs.mark_running(job.id, pid=1)
    writer = spawn_helper("progress_writer", str(jobs.db_path), job.id, "300")
    seen = []
    while writer.poll() is None:
        current = jobs.get(job.id)
        if current.iteration is not None:
            seen.append(current.iteration)
        jobs.list(limit=5)
    writer.communicate()
    assert writer.returncode == 0
    assert seen == sorted(seen), "progress went backwards"
    final = jobs.get(job.id)
    assert final.status == "succeeded" and final.iteration == 300 and final.version == "v-test"


@pytest.mark.slow
def test_two_processes_never_claim_the_same_job(jobs):
    ids = {jobs.create(config={"n": n}).id for n in range(40)}
    claimers = [spawn_helper("claimer", str(jobs.db_path)) for _ in range(2)]
    claimed = []
    for proc in claimers:
        out, _ = proc.communicate()
        assert proc.returncode == 0
        claimed += out.split()
    assert sorted(claimed) == sorted(ids)
    assert jobs.list(status="running").total == 40
