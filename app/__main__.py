"""`python -m app` / `shardlens-serve`: serve recommendations with uvicorn."""

from __future__ import annotations

import argparse
import copy
import os
import signal
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.settings import Settings, get_settings


def parse_args(argv: Sequence[str] | None, settings: Settings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="shardlens-serve",
        description="Serve posterior-based movie recommendations (FastAPI + uvicorn). "
        "Defaults come from SHARDLENS_* environment variables or .env.",
    )
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    parser.add_argument("--workers", type=int, default=settings.workers)
    parser.add_argument(
        "--log-level",
        default=settings.log_level,
        choices=["critical", "error", "warning", "info", "debug", "trace"],
    )
    parser.add_argument("--store", type=Path, default=settings.store_dir, help="posterior store")
    parser.add_argument(
        "--serve-policy",
        choices=["latest", "latest-converged"],
        default=settings.serve_policy,
        help="serve `latest`, or the newest converged version (falling back to `latest` with a "
        "warning when none converged); env SHARDLENS_SERVE_POLICY (default latest-converged)",
    )
    parser.add_argument(
        "--train-if-empty",
        action="store_true",
        help="when the store has no posterior, queue a training job (`--preset default`) "
        "and serve at once: /healthz answers, /readyz says 503 with the job's progress, and "
        "the posterior is loaded when the job publishes it",
    )
    return parser.parse_args(argv)


FIRST_START_CONFIG = {"preset": "default"}


class FirstStartError(Exception):
    """A first-start training job cannot run; the message says what to change."""


def store_is_empty(store: Path) -> bool:
    from storage.posterior import latest_version

    return latest_version(store) is None


def queue_first_training(store: Path, settings: Settings) -> str:
    """Queue the first-start training job (`--preset default`) in the store's job database,
    to be run by the server's job runner; reuse one that is already queued or running (a
    restart during first start). Returns its job id. Raises `FirstStartError` when no
    runner would run it or the database cannot be opened."""
    from storage.job_record import JobError
    from storage.job_store import JobStore, default_db_path

    if not settings.run_jobs:
        raise FirstStartError(
            "--train-if-empty needs the job runner, but SHARDLENS_RUN_JOBS is false: enable "
            "it, or train first with `python -m training train --preset default "
            f"--store {store}`"
        )
    try:
        jobs = JobStore(default_db_path(store))
        active = [job for job in jobs.list_by_status("queued", "running") if job.kind == "train"]
        if active:
            return active[0].id
        return jobs.create(config=FIRST_START_CONFIG, kind="train", backend="local").id
    except (OSError, sqlite3.Error, JobError) as exc:
        raise FirstStartError(
            f"cannot queue the first-start training job in {store} ({exc}); make the store "
            "writable, or train first with `python -m training train --preset default`"
        ) from exc


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging config plus the app's `shardlens.*` loggers at `level`, so version
    loads, swaps and refused versions reach the server log with uvicorn's format; every line
    ends with the request id of the request it was logged for (`-` outside requests)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    # Every line logged while a request is handled names its request id (X-Request-ID).
    config.setdefault("filters", {})["request_id"] = {
        "()": "asgi_correlation_id.CorrelationIdFilter",
        "uuid_length": 32,
        "default_value": "-",
    }
    for name, formatter in config["formatters"].items():
        formatter["fmt"] = formatter["fmt"] + " [request %(correlation_id)s]"
        config["formatters"][name] = formatter
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("request_id")
    config["loggers"]["shardlens"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def _after_graceful_shutdown(signum: int, frame: object) -> None:
    """Runs only when uvicorn re-raises the signal it already handled."""


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    settings = get_settings()
    args = parse_args(argv, settings)
    if args.train_if_empty and store_is_empty(args.store):
        try:
            job_id = queue_first_training(args.store, settings)
        except FirstStartError as exc:
            print(f"shardlens-serve: {exc}", file=sys.stderr, flush=True)
            return 2
        print(
            f"shardlens-serve: {args.store} is empty; serving now, training job {job_id} "
            "(--preset default) runs in the background and its posterior is loaded when "
            "published",
            flush=True,
        )
    # Workers are separate processes: they read settings from the environment.
    os.environ["SHARDLENS_STORE_DIR"] = str(args.store)
    os.environ["SHARDLENS_SERVE_POLICY"] = args.serve_policy
    get_settings.cache_clear()
    # uvicorn shuts down gracefully on SIGTERM/SIGINT and then re-raises the signal; with
    # these handlers that re-raise is a no-op, so a clean shutdown exits with status 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _after_graceful_shutdown)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        log_config=log_config(args.log_level),
        timeout_graceful_shutdown=settings.shutdown_grace_s,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
