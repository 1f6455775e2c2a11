"""Helpers for job tests: a runner on the fake training script, and polling."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.jobs.runner import JobRunner
from storage.job_record import Job
from storage.job_store import JobStore

ROOT = Path(__file__).resolve().parents[2]
FAKE_PROGRAM = (sys.executable, str(ROOT / "tests" / "helpers" / "fake_train.py"))


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def fake_runner(store_dir: Path, **options: Any) -> JobRunner:
    options.setdefault("poll_interval_s", 0.05)
    options.setdefault("cancel_grace_s", 5.0)
    return JobRunner(store_dir=store_dir, program=FAKE_PROGRAM, env=child_env(), **options)


def wait_for(predicate: Callable[[], Any], *, timeout_s: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what or predicate}")


def wait_finished(store: JobStore, job_id: str, *, timeout_s: float = 20.0) -> Job:
    return wait_for(
        lambda: (j := store.get(job_id)).finished and j, timeout_s=timeout_s, what=job_id
    )


def kill_leftovers(store_dir: Path) -> None:
    """SIGKILL the process groups of jobs still running (a failed test must not leak them)."""
    db = store_dir / "jobs.sqlite3"
    if not db.exists():
        return
    for job in JobStore(db).list_by_status("running"):
        if job.pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(job.pid, signal.SIGKILL)
