"""Wire the job machinery into the app: the job store, and the runner the server owns."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.jobs.command import DEFAULT_PROGRAM
from app.jobs.launchers.base import Launcher
from app.jobs.launchers.local import LocalLauncher
from app.jobs.launchers.slurm import SlurmLauncher
from app.jobs.runner import JobRunner
from app.settings import Settings
from storage.job_record import JobError
from storage.job_store import JobStore, default_db_path

log = logging.getLogger("shardlens.jobs")
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


def child_environment() -> dict[str, str]:
    """The server's environment, with the project importable by `python -m training` and
    without the API token (training processes do not need it)."""
    env = {k: v for k, v in os.environ.items() if k != "SHARDLENS_API_TOKEN"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env


def start_jobs(
    app: Any, settings: Settings, *, reload: Callable[[str], object]
) -> JobRunner | None:
    """Open the job store on `app.state.job_store` and, unless `run_jobs` is off, start the
    runner (`app.state.job_runner`). `reload(version)` is called after a job succeeds."""
    app.state.job_runner = None
    app.state.job_store = None
    app.state.jobs_unavailable = None
    try:
        app.state.job_store = JobStore(default_db_path(settings.store_dir))
    except (OSError, sqlite3.Error, JobError) as exc:  # e.g. a read-only store: serve anyway
        app.state.jobs_unavailable = (
            f"the job database in {settings.store_dir} cannot be opened ({exc}); make the store "
            "writable by the server to use /jobs"
        )
        log.warning("jobs disabled: %s", app.state.jobs_unavailable)
        return None
    if not settings.run_jobs:
        return None
    if (
        settings.job_backend == "slurm"
        and shutil.which(
            "sbatch", path=str(settings.slurm.bin_dir) if settings.slurm.bin_dir else None
        )
        is None
    ):
        log.warning(
            "SHARDLENS_JOB_BACKEND=slurm but sbatch is not on %s: jobs will fail until "
            "Slurm's client commands are installed (or set SHARDLENS_SLURM__BIN_DIR)",
            settings.slurm.bin_dir or "PATH",
        )
    store = app.state.job_store
    data_root = Path(settings.data_dir).resolve()
    program = settings.job_program or DEFAULT_PROGRAM
    env = child_environment()
    # Both launchers always: jobs recorded under the other backend are still watched and
    # can be cancelled after the setting changed.
    launchers: dict[str, Launcher] = {
        "local": LocalLauncher(
            store=store,
            store_dir=settings.store_dir,
            data_root=data_root,
            program=program,
            env=env,
            cancel_grace_s=settings.job_cancel_grace_s,
        ),
        "slurm": SlurmLauncher(
            store=store,
            store_dir=settings.store_dir,
            settings=settings.slurm,
            data_root=data_root,
            program=program,
            env=env,
        ),
    }
    runner = JobRunner(
        store_dir=settings.store_dir,
        max_concurrent=settings.max_concurrent_jobs,
        poll_interval_s=settings.job_poll_interval_s,
        on_success=reload,
        launchers=launchers,
    )
    runner.start()
    app.state.job_runner = runner
    return runner


def stop_jobs(app: Any) -> None:
    runner = getattr(app.state, "job_runner", None)
    if runner is not None:
        runner.stop()
