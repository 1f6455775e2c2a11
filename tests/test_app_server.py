"""One real uvicorn process (`python -m app`) on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.app_helpers import publish, tiny_data


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_real_uvicorn_process(tmp_path):
    data = tiny_data(num_users=20, num_movies=16)
    first = publish(tmp_path, data, seed=1).version
    port = free_port()
    env = {**os.environ, "SHARDLENS_POLL_INTERVAL_S": "0.1", "PYTHONUNBUFFERED": "1"}
    env["SHARDLENS_CACHE_DIR"] = str(tmp_path.parent / "picks-cache")
    command = [sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--store", str(tmp_path), "--log-level", "warning"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stdout.read().decode()
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not become ready in 60 s"
            time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=10) as client:
            user_id = int(data.user_ids[0])
            body = client.get(f"/recommend/{user_id}", params={"k": 3}).json()
            assert body["model_version"] == first and len(body["recommendations"]) <= 3
            assert client.get("/recommend/987654").status_code == 404
            assert client.get("/recommend/1", params={"k": 0}).status_code == 422
            assert client.get("/openapi.json").json()["info"]["title"] == "shardlens"
            second = publish(tmp_path, data, seed=2).version
            deadline = time.monotonic() + 30
            while client.get("/readyz").json()["model_version"] != second:
                assert time.monotonic() < deadline, "no swap within 30 s"
                time.sleep(0.05)
            assert client.get(f"/recommend/{user_id}").json()["model_version"] == second
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert server.returncode == 0, server.stdout.read().decode()  # graceful shutdown
