"""Run `python -m app` as a real uvicorn process on 127.0.0.1 for a test."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx


class LiveServer(NamedTuple):
    base_url: str
    process: subprocess.Popen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(server: LiveServer, *, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        output = server.process.stdout
        assert server.process.poll() is None, output.read().decode() if output else "see its log"
        try:
            if httpx.get(f"{server.base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"the server did not become ready in {timeout_s} s"
        time.sleep(0.1)


@contextlib.contextmanager
def live_server(
    store: Path,
    *,
    cache_dir: Path,
    env: dict[str, str] | None = None,
    log_level: str = "warning",
    log_file: Path | None = None,
) -> Iterator[LiveServer]:
    """Start the server on a free port, wait until it is ready, SIGTERM it afterwards.

    After the block, `process.returncode` holds the exit status of the graceful shutdown.
    Its output goes to `process.stdout`, or to `log_file` (for verbose logs that would fill
    a pipe nobody reads while the server runs).
    """
    port = free_port()
    full_env = {
        **os.environ,
        "SHARDLENS_POLL_INTERVAL_S": "0.1",
        "SHARDLENS_CACHE_DIR": str(cache_dir),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    command = [sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--store", str(store), "--log-level", log_level]
    log = log_file.open("wb") if log_file is not None else None
    output = log if log is not None else subprocess.PIPE
    process = subprocess.Popen(command, env=full_env, stdout=output, stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", process)
    try:
        wait_ready(server)
        yield server
    finally:
        stop(process)
        if log is not None:
            log.close()


def stop(process: subprocess.Popen, *, timeout_s: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within `timeout_s`."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
