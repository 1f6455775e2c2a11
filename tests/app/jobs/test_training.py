"""Jobs that run the real training CLI (`smoke` preset) behind the real app.

A persistent JAX compilation cache shared by the test session keeps later runs short: only
the first training process compiles."""

from __future__ import annotations

import os
import re
import signal
import sys

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from storage.posterior import list_versions
from tests.helpers.job_helpers import kill_leftovers, wait_for

pytestmark = pytest.mark.slow

TOKEN = "train-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="session")
def jax_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("jax-cache")


@pytest.fixture
def client(tmp_path, jax_cache, monkeypatch):
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(jax_cache))
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    settings = Settings(
        store_dir=tmp_path / "store",
        data_dir=tmp_path / "data",
        cache_dir=tmp_path / "cache",
        poll_interval_s=0,  # only the runner's reload can swap versions in
        api_token=TOKEN,
        job_poll_interval_s=0.1,
        job_cancel_grace_s=20,
    )
    with TestClient(create_app(settings)) as c:
        yield c
    kill_leftovers(tmp_path / "store")


def _job(client, job_id):
    return client.get(f"/jobs/{job_id}", headers=AUTH).json()


def _wait(client, job_id, *statuses, timeout_s=120.0):
    return wait_for(
        lambda: (j := _job(client, job_id))["status"] in statuses and j,
        timeout_s=timeout_s,
        what=f"job {job_id} to be {statuses}",
    )


def _served(client):
    response = client.get("/recommend/1", params={"k": 1})
    return response.json()["model_version"] if response.status_code == 200 else None


def _start(client, **overrides):
    response = client.post("/jobs", json={"preset": "smoke", **overrides}, headers=AUTH)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_jobs_queue_in_order_and_each_success_is_served(client, tmp_path):
    assert client.get("/recommend/1").status_code == 503
    first, second = _start(client, seed=1), _start(client, seed=2)
    assert _job(client, second)["status"] == "queued"

    a = _wait(client, first, "succeeded")
    assert a["version"] and a["progress"]["phase"] == "saving"
    wait_for(lambda: _served(client) == a["version"], what="hot swap to the first version")
    b = _wait(client, second, "succeeded")
    assert b["started_at"] >= a["finished_at"]
    wait_for(lambda: _served(client) == b["version"], what="hot swap to the second version")
    assert [v.version for v in list_versions(tmp_path / "store")] == [a["version"], b["version"]]


def test_cancel_mid_run_publishes_nothing(client, tmp_path):
    job_id = _start(client, num_burnin_steps=400)
    wait_for(
        lambda: (_job(client, job_id)["progress"]["iteration"] or 0) >= 20,
        timeout_s=120,
        what="the first segment",
    )
    assert client.delete(f"/jobs/{job_id}", headers=AUTH).status_code == 202
    done = _wait(client, job_id, "cancelled", timeout_s=30)
    assert done["version"] is None and done["progress"]["iteration"] < 440
    assert list_versions(tmp_path / "store") == []
    lines = client.get(f"/jobs/{job_id}/logs", headers=AUTH).json()["lines"]
    assert any("nothing was published" in line for line in lines)  # a clean SIGTERM stop


def test_sigkill_fails_the_job_and_resume_continues_from_the_checkpoint(client, tmp_path):
    job_id = _start(client, num_burnin_steps=100)
    running = wait_for(
        lambda: (
            (j := _job(client, job_id))["progress"]["iteration"]
            and j["progress"]["iteration"] >= 40
            and j
        ),
        timeout_s=120,
        what="two segments",
    )
    os.killpg(running["pid"], signal.SIGKILL)
    failed = _wait(client, job_id, "failed", timeout_s=30)
    assert "killed by SIGKILL (out of memory" in failed["error"]
    assert list_versions(tmp_path / "store") == []

    assert client.post(f"/jobs/{job_id}/resume", headers=AUTH).status_code == 202
    done = _wait(client, job_id, "succeeded")
    assert done["attempts"] == 2 and done["error"] is None
    wait_for(lambda: _served(client) == done["version"], what="hot swap")
    log = client.get(f"/jobs/{job_id}/logs", params={"lines": 10_000}, headers=AUTH).json()
    second = "\n".join(log["lines"]).split("=== attempt 2")[1]
    assert "--resume" in second.splitlines()[0]
    done_at = [int(m) for m in re.findall(r"^(?:burnin|sampling)\s+(\d+)/120", second, re.M)]
    assert done_at and done_at[0] >= 60  # resumed from >= 40, not restarted from iteration 0


def test_a_stuck_job_fails_with_the_reason_and_force_publish_publishes_it_flagged(
    tmp_path, jax_cache, monkeypatch
):
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(jax_cache))
    # Every job of this server trains with a step size no proposal survives.
    stuck = [sys.executable, "-m", "training", "train", "--step-size", "1e6"]
    settings = Settings(
        store_dir=tmp_path / "store",
        data_dir=tmp_path / "data",
        cache_dir=tmp_path / "cache",
        poll_interval_s=0,
        api_token=TOKEN,
        job_poll_interval_s=0.1,
        job_program=[*stuck, "--adaptation-share", "0"],
    )
    try:
        with TestClient(create_app(settings)) as client:
            failed = _wait(client, _start(client), "failed")
            assert failed["error"].startswith("refusing to publish: the chains did not move")
            assert "Lower --step-size" in failed["error"]
            assert failed["error"].endswith('submit it again with "force_publish": true.')
            assert failed["version"] is None and list_versions(tmp_path / "store") == []

            done = _wait(client, _start(client, force_publish=True), "succeeded")
            assert done["config"]["force_publish"] is True
            wait_for(lambda: _served(client) == done["version"], what="hot swap")
            note = client.get("/recommend/1").json()["convergence"]
            assert note["status"] == "unconverged"  # served, flagged, with the fallback note
            assert "no version in the store passed the convergence check" in note["warning"]
    finally:
        kill_leftovers(tmp_path / "store")


def test_a_training_error_is_reported_by_the_training_process(client, tmp_path):
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "broken.zip").write_bytes(b"not a zip")  # submitted fine, unreadable
    job_id = _start(client, data="broken.zip")
    failed = _wait(client, job_id, "failed", timeout_s=60)
    assert "not a zip archive or a folder of GroupLens files" in failed["error"]
    assert "exited with code" not in failed["error"]  # written by the process, not the runner
