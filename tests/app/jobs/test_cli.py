"""`python -m training train --job-id ... --jobs-db ...`: the training side of a job."""

from __future__ import annotations

import subprocess
import sys

import pytest

from storage.job_store import JobStore
from tests.helpers.job_helpers import ROOT, child_env

pytestmark = pytest.mark.slow


def _train(*flags: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "training", "train", "--preset", "smoke", *flags]
    return subprocess.run(
        command, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=120
    )


def test_a_configuration_error_is_written_to_the_job_record(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    job = store.mark_running(store.create(config={}).id, pid=1)
    done = _train(
        "--data", "synthetic:users=many", "--store", str(tmp_path),
        "--job-id", job.id, "--jobs-db", str(store.db_path),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    failed = store.get(job.id)
    assert failed.status == "failed"
    assert "synthetic option users must be an integer" in failed.error


def test_a_cancelled_job_stops_before_training(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")  # the default --jobs-db: <store>/jobs.sqlite3
    job = store.mark_running(store.create(config={}).id, pid=1)
    store.request_cancel(job.id)
    done = _train("--store", str(tmp_path), "--job-id", job.id)
    assert done.returncode == 143, done.stderr
    assert "nothing was published" in done.stderr
    assert store.get(job.id).status == "running"  # the runner records `cancelled`
    assert not (tmp_path / "versions").exists() or not any((tmp_path / "versions").iterdir())
