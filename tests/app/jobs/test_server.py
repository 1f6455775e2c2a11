"""`python -m app --workers 2`: one runner across uvicorn workers, and failover when the
worker holding the runner lock dies. Jobs run the fake trainer."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest

from tests.helpers.job_helpers import FAKE_PROGRAM, ROOT, wait_for
from tests.helpers.live_server import stop

pytestmark = pytest.mark.slow

TOKEN = "server-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_one_runner_across_workers_and_failover(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "fake:succeed:0.3").touch()
    store = tmp_path / "store"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "SHARDLENS_API_TOKEN": TOKEN,
        "SHARDLENS_DATA_DIR": str(data),
        "SHARDLENS_CACHE_DIR": str(tmp_path / "cache"),
        "SHARDLENS_JOB_PROGRAM": json.dumps(list(FAKE_PROGRAM)),
        "SHARDLENS_JOB_POLL_INTERVAL_S": "0.1",
        "SHARDLENS_POLL_INTERVAL_S": "0",
    }
    port = _free_port()
    command = [sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--store", str(store), "--workers", "2", "--log-level", "warning"]
    server = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    lock = store / "jobs" / "runner.lock"
    try:
        wait_for(lambda: server.poll() is not None or _healthy(base), timeout_s=60, what="server")
        assert server.poll() is None, server.stdout.read().decode()
        with httpx.Client(base_url=base, timeout=10, headers=AUTH) as client:

            def run_jobs(count: int) -> list[dict]:
                ids = [
                    client.post("/jobs", json={"data": "fake:succeed:0.3"}).json()["id"]
                    for _ in range(count)
                ]
                return [
                    wait_for(
                        lambda i=i: (
                            (j := client.get(f"/jobs/{i}").json())["status"]
                            in ("succeeded", "failed")
                            and j
                        ),
                        timeout_s=30,
                        what=f"job {i}",
                    )
                    for i in ids
                ]

            jobs = run_jobs(3)
            assert [j["status"] for j in jobs] == ["succeeded"] * 3
            for before, after in itertools.pairwise(jobs):  # one at a time across workers
                assert before["finished_at"] <= after["started_at"]

            holder = int(lock.read_text())
            os.kill(holder, signal.SIGKILL)  # the worker running jobs dies
            wait_for(
                lambda: lock.read_text().strip() not in ("", str(holder)),
                timeout_s=30,
                what="another worker to take the runner lock",
            )
            assert [j["status"] for j in run_jobs(1)] == ["succeeded"]
    finally:
        stop(server)
