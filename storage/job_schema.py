"""The job database's schema: one SQL migration per step; `PRAGMA user_version` counts the
steps a database has applied (`storage.job_store.JobStore` applies the rest on open)."""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

# The schema, one migration per step; PRAGMA user_version counts the steps applied.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN
            ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        config TEXT NOT NULL,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        phase TEXT,
        iteration INTEGER,
        total INTEGER,
        leapfrog_per_s REAL,
        acceptance REAL,
        step_size REAL,
        eta_s REAL,
        updated_at REAL,
        error TEXT,
        version TEXT,
        log_path TEXT,
        pid INTEGER,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX jobs_status_seq ON jobs (status, seq);
    """,
    # The run's sizes, known before compiling: watch matrix, memory per device and host (JSON).
    "ALTER TABLE jobs ADD COLUMN sizes TEXT",
    # Jobs handed to a cluster scheduler: which launcher runs them, the scheduler's job id,
    # and its last seen state (pending, running, ...) and reason.
    """
    ALTER TABLE jobs ADD COLUMN backend TEXT NOT NULL DEFAULT 'local';
    ALTER TABLE jobs ADD COLUMN external_id TEXT;
    ALTER TABLE jobs ADD COLUMN scheduler_state TEXT;
    ALTER TABLE jobs ADD COLUMN scheduler_reason TEXT;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
