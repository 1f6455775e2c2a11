"""`python -m app`: options reach uvicorn; --train-if-empty queues a training job, only when
the store is empty, and serves at once (the live test sees /healthz, then /readyz turn 200)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import app.__main__ as cli
from app.settings import get_settings
from storage.job_store import JobStore, default_db_path
from tests.helpers.app_helpers import publish, tiny_data
from tests.helpers.job_helpers import child_env, wait_for
from tests.helpers.live_server import free_port, stop

FIRST_TRAIN = Path(__file__).resolve().parents[1] / "helpers" / "fake_first_train.py"


@pytest.fixture
def calls(monkeypatch):
    seen: list[tuple[str, object]] = []
    monkeypatch.setenv("SHARDLENS_STORE_DIR", "unused")  # main() sets it; undone after the test
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: seen.append(("serve", (target, kw))))
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield seen
    for signum, handler in handlers.items():  # main() installs its own before serving
        signal.signal(signum, handler)


def _jobs(store):
    return JobStore(default_db_path(store)).list().jobs


def test_train_if_empty_queues_a_job_and_serves_at_once(tmp_path, calls):
    argv = ["--store", str(tmp_path), "--port", "9123", "--workers", "2", "--train-if-empty"]
    assert cli.main(argv) == 0
    assert [name for name, _ in calls] == ["serve"]
    target, options = calls[0][1]
    assert target == "app.main:create_app" and options["factory"] is True
    assert (options["port"], options["workers"]) == (9123, 2)
    (job,) = _jobs(tmp_path)
    assert (job.kind, job.status, job.config) == ("train", "queued", {"preset": "default"})


def test_a_restart_during_first_start_reuses_the_queued_job(tmp_path, calls):
    assert cli.main(["--store", str(tmp_path), "--train-if-empty"]) == 0
    assert cli.main(["--store", str(tmp_path), "--train-if-empty"]) == 0
    assert len(_jobs(tmp_path)) == 1


def test_no_training_when_a_version_exists(tmp_path, calls):
    publish(tmp_path, tiny_data(num_users=5, num_movies=4))
    assert cli.main(["--store", str(tmp_path), "--train-if-empty"]) == 0
    assert [name for name, _ in calls] == ["serve"]
    assert _jobs(tmp_path) == []


def test_first_start_without_the_job_runner_is_refused(tmp_path, calls, monkeypatch, capsys):
    monkeypatch.setenv("SHARDLENS_RUN_JOBS", "false")
    get_settings.cache_clear()
    try:
        assert cli.main(["--store", str(tmp_path), "--train-if-empty"]) == 2
    finally:
        get_settings.cache_clear()
    assert calls == []
    assert "SHARDLENS_RUN_JOBS" in capsys.readouterr().err


@pytest.mark.slow
def test_first_start_binds_before_training_and_loads_when_published(tmp_path):
    """The real server: /healthz answers and /readyz says 503 naming the job while the
    first-start job runs; the posterior it publishes is then served."""
    store = tmp_path / "store"
    env = {
        **child_env(),
        "SHARDLENS_JOB_PROGRAM": json.dumps([sys.executable, str(FIRST_TRAIN)]),
        "SHARDLENS_JOB_POLL_INTERVAL_S": "0.1",
        "SHARDLENS_POLL_INTERVAL_S": "0.2",
        "SHARDLENS_CACHE_DIR": str(tmp_path / "cache"),
        "FAKE_TRAIN_SECONDS": "4",
    }
    port = free_port()
    command = [sys.executable, "-m", "app", "--train-if-empty", "--store", str(store)]
    command += ["--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        health = wait_for(lambda: _get(f"{base}/healthz"), timeout_s=30, what="/healthz")
        assert health.status_code == 200
        (job,) = _jobs(store)
        waiting = _get(f"{base}/readyz")
        assert waiting is not None and waiting.status_code == 503, waiting
        assert f"training job {job.id}" in waiting.json()["detail"]
        ready = wait_for(
            lambda: (r := _get(f"{base}/readyz")) is not None and r.status_code == 200 and r,
            timeout_s=60,
            what="/readyz 200 after the first-start job",
        )
        assert JobStore(default_db_path(store)).get(job.id).status == "succeeded"
        assert ready.json()["model_version"] == JobStore(default_db_path(store)).get(job.id).version
        assert _get(f"{base}/recommend/1").status_code == 200
    finally:
        stop(process)
    assert process.returncode == 0, process.stdout.read().decode() if process.stdout else ""


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2)
    except httpx.TransportError:
        return None
