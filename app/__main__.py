"""`python -m app` / `shardlens-serve`: serve recommendations with uvicorn."""

from __future__ import annotations

import argparse
import copy
import os
import signal
import subprocess
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
        help="when the store has no posterior, first train one with "
        "`python -m training train --preset default` (output streamed), then serve",
    )
    return parser.parse_args(argv)


def store_is_empty(store: Path) -> bool:
    from storage.posterior import latest_version

    return latest_version(store) is None


def train_into(store: Path) -> int:
    """Run the training CLI as a subprocess, streaming its output; its exit status."""
    command = [sys.executable, "-m", "training", "train", "--preset", "default"]
    command += ["--store", str(store)]
    print(f"shardlens-serve: {store} is empty; training first: {' '.join(command)}", flush=True)
    return subprocess.call(command)


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
        status = train_into(args.store)
        if status != 0:
            print(f"shardlens-serve: training failed (exit {status}); not serving", flush=True)
            return status
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
