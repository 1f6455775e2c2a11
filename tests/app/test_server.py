"""One real uvicorn process (`python -m app`) on 127.0.0.1."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.helpers.app_helpers import publish, tiny_data
from tests.helpers.live_server import live_server


@pytest.mark.slow
def test_real_uvicorn_process(tmp_path):
    data = tiny_data(num_users=20, num_movies=16)
    first = publish(tmp_path, data, seed=1).version
    with (
        live_server(tmp_path, cache_dir=tmp_path.parent / "picks-cache") as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
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
    process = server.process
    assert process.returncode == 0, process.stdout.read().decode()  # graceful shutdown
