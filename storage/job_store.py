"""SQLite job records (WAL): the job runner and the server read them, the training process
writes its progress. Every method opens its own short connection, so a `JobStore` is safe to
share between threads and to use from several processes at once."""

from __future__ import annotations

import builtins
import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from common.jobspec import PROGRESS_FIELDS
from common.jsonable import jsonable
from storage import layout
from storage.job_record import (
    FINISHED,
    PENDING,
    STATUSES,
    InvalidTransitionError,
    Job,
    JobError,
    JobNotFoundError,
    JobPage,
    row_to_job,
)
from storage.job_schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["JobStore", "default_db_path"]

_EFFECTIVE_STATUS = (
    f"CASE WHEN status = 'running' AND scheduler_state = '{PENDING}' THEN 'queued' ELSE status END"
)


class JobStore:
    """Job records in one SQLite database file (created and migrated on first use)."""

    def __init__(self, db_path: str | Path, *, busy_timeout_s: float = 10.0):
        self.db_path = Path(db_path)
        self.busy_timeout_s = busy_timeout_s
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    @contextlib.contextmanager
    def _connect(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection in autocommit mode; `write` wraps the block in BEGIN IMMEDIATE, so
        read-then-write sequences are atomic across processes."""
        conn = sqlite3.connect(self.db_path, timeout=self.busy_timeout_s, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            conn.execute("PRAGMA synchronous = NORMAL")
            if write:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            else:
                yield conn
        finally:
            conn.close()

    def _migrate(self) -> None:
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode = WAL")  # persistent: set once per database
        with self._connect(write=True) as conn:
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            if current > SCHEMA_VERSION:
                raise JobError(
                    f"{self.db_path} has job schema version {current}, newer than this code's "
                    f"{SCHEMA_VERSION}; upgrade shardlens"
                )
            for step in range(current, SCHEMA_VERSION):
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {step + 1}")

    # -- reading ---------------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(f"no job has id {job_id!r}")
        return row_to_job(row)

    def list(self, *, limit: int = 20, offset: int = 0, status: str | None = None) -> JobPage:
        """One page of jobs, newest first, and the total count (optionally of one
        `effective_status`)."""
        if limit < 1 or offset < 0:
            raise JobError("limit must be at least 1 and offset at least 0")
        where, args = (
            (f"WHERE {_EFFECTIVE_STATUS} = ?", (_check_status(status),)) if status else ("", ())
        )
        with self._connect() as conn:
            total = conn.execute(f"SELECT COUNT(*) FROM jobs {where}", args).fetchone()[0]
            rows = conn.execute(
                f"SELECT * FROM jobs {where} ORDER BY seq DESC LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).fetchall()
        return JobPage([row_to_job(r) for r in rows], total, limit, offset)

    def list_by_status(self, *statuses: str) -> builtins.list[Job]:
        """All jobs with one of `statuses`, oldest first."""
        marks = ",".join("?" * len(statuses))
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT * FROM jobs WHERE status IN ({marks}) ORDER BY seq",
                tuple(_check_status(s) for s in statuses),
            ).fetchall()
        return [row_to_job(r) for r in rows]

    # -- writing ---------------------------------------------------------------------------

    def create(
        self,
        *,
        config: Mapping[str, Any],
        kind: str = "train",
        log_path: str | None = None,
        backend: str = "local",
    ) -> Job:
        """A new queued job, to be run by the launcher named `backend`."""
        job_id = uuid.uuid4().hex
        with self._connect(write=True) as conn:
            conn.execute(
                "INSERT INTO jobs (id, kind, status, config, created_at, log_path, backend) "
                "VALUES (?, ?, 'queued', ?, ?, ?, ?)",
                (
                    job_id,
                    kind,
                    json.dumps(dict(config), sort_keys=True),
                    time.time(),
                    log_path,
                    backend,
                ),
            )
        return self.get(job_id)

    def claim_next_queued(self, *, kind: str | None = None, pid: int | None = None) -> Job | None:
        """Atomically move the oldest queued job to running (None when none is queued)."""
        kind_filter, args = ("AND kind = ?", (kind,)) if kind else ("", ())
        with self._connect(write=True) as conn:
            row = conn.execute(
                f"SELECT id FROM jobs WHERE status = 'queued' AND cancel_requested = 0 "
                f"{kind_filter} ORDER BY seq LIMIT 1",
                args,
            ).fetchone()
            if row is None:
                return None
            self._start(conn, row["id"], pid)
        return self.get(row["id"])

    def mark_running(self, job_id: str, *, pid: int | None = None) -> Job:
        """queued -> running."""
        with self._connect(write=True) as conn:
            self._require(conn, job_id, ("queued",), "running")
            self._start(conn, job_id, pid)
        return self.get(job_id)

    @staticmethod
    def _start(conn: sqlite3.Connection, job_id: str, pid: int | None) -> None:
        conn.execute(
            "UPDATE jobs SET status = 'running', started_at = ?, finished_at = NULL, "
            "pid = ?, error = NULL, attempts = attempts + 1, external_id = NULL, "
            "scheduler_state = NULL, scheduler_reason = NULL WHERE id = ?",
            (time.time(), pid, job_id),
        )

    def set_pid(self, job_id: str, pid: int | None) -> None:
        with self._connect(write=True) as conn:
            self._require(conn, job_id, ("queued", "running"), "given a pid")
            conn.execute("UPDATE jobs SET pid = ? WHERE id = ?", (pid, job_id))

    def set_external_id(self, job_id: str, external_id: str) -> None:
        """The scheduler's id for a running job's current attempt (e.g. a Slurm job id)."""
        with self._connect(write=True) as conn:
            self._require(conn, job_id, ("running",), "given a scheduler job id")
            conn.execute("UPDATE jobs SET external_id = ? WHERE id = ?", (external_id, job_id))

    def set_scheduler_state(
        self, job_id: str, *, state: str, reason: str | None, started_at: float | None = None
    ) -> Job:
        """Record what the scheduler last said about the job (any status: a finished job
        keeps the scheduler's final word). `started_at` replaces the start time, e.g. when
        the scheduler started the job later than it was submitted."""
        with self._connect(write=True) as conn:
            self._require(conn, job_id, STATUSES, "given a scheduler state")
            conn.execute(
                "UPDATE jobs SET scheduler_state = ?, scheduler_reason = ?, "
                "started_at = COALESCE(?, started_at) WHERE id = ?",
                (state, reason, started_at, job_id),
            )
        return self.get(job_id)

    def set_log_path(self, job_id: str, log_path: str | None) -> None:
        with self._connect(write=True) as conn:
            self._require(conn, job_id, STATUSES, "given a log path")
            conn.execute("UPDATE jobs SET log_path = ? WHERE id = ?", (log_path, job_id))

    def update_progress(self, job_id: str, progress: Mapping[str, Any]) -> bool:
        """Record a progress payload (keys of PROGRESS_FIELDS; others are ignored) on a
        running job. Returns False, changing nothing, when the job is not running."""
        fields = {k: progress[k] for k in PROGRESS_FIELDS if k in progress}
        if progress.get("sizes"):
            fields["sizes"] = json.dumps(jsonable(progress["sizes"]))
        sets = "".join(f"{k} = ?, " for k in fields)
        with self._connect() as conn:
            cursor = conn.execute(
                f"UPDATE jobs SET {sets}updated_at = ? WHERE id = ? AND status = 'running'",
                (
                    *(v if k == "sizes" else jsonable(v) for k, v in fields.items()),
                    time.time(),
                    job_id,
                ),
            )
        if cursor.rowcount == 0:
            self.get(job_id)  # raises JobNotFoundError for an unknown id
            return False
        return True

    def finish(
        self, job_id: str, status: str, *, error: str | None = None, version: str | None = None
    ) -> Job:
        """running -> succeeded | failed | cancelled (queued -> cancelled too)."""
        if status not in FINISHED:
            raise InvalidTransitionError(f"finish needs one of {FINISHED}, not {status!r}")
        allowed = ("queued", "running") if status == "cancelled" else ("running",)
        with self._connect(write=True) as conn:
            self._require(conn, job_id, allowed, status)
            conn.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, error = ?, "
                "version = COALESCE(?, version) WHERE id = ?",
                (status, time.time(), error, version, job_id),
            )
        return self.get(job_id)

    def request_cancel(self, job_id: str) -> Job:
        """Cancel a queued job now; flag a running one (the runner stops it and calls
        `finish(..., "cancelled")`). Finished jobs are left as they are."""
        with self._connect(write=True) as conn:
            job = self._require(conn, job_id, STATUSES, "cancelled")
            if job["status"] == "queued":
                conn.execute(
                    "UPDATE jobs SET status = 'cancelled', finished_at = ?, cancel_requested = 1 "
                    "WHERE id = ?",
                    (time.time(), job_id),
                )
            elif job["status"] == "running":
                conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
        return self.get(job_id)

    def requeue(self, job_id: str) -> Job:
        """failed | cancelled -> queued, to resume a job (its config and attempts are kept)."""
        with self._connect(write=True) as conn:
            self._require(conn, job_id, ("failed", "cancelled"), "requeued")
            conn.execute(
                "UPDATE jobs SET status = 'queued', finished_at = NULL, started_at = NULL, "
                "pid = NULL, cancel_requested = 0, external_id = NULL, scheduler_state = NULL, "
                "scheduler_reason = NULL WHERE id = ?",
                (job_id,),
            )
        return self.get(job_id)

    @staticmethod
    def _require(
        conn: sqlite3.Connection, job_id: str, allowed: tuple[str, ...], target: str
    ) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(f"no job has id {job_id!r}")
        if row["status"] not in allowed:
            raise InvalidTransitionError(
                f"job {job_id} is {row['status']} and cannot be {target} "
                f"(allowed from: {', '.join(allowed)})"
            )
        return row


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise JobError(f"unknown job status {status!r}; use one of {STATUSES}")
    return status


def default_db_path(store_dir: str | Path) -> Path:
    """Where jobs are recorded by default: `jobs.sqlite3` next to the posterior store."""
    return layout.jobs_db_path(store_dir)
