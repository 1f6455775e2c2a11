"""The job API over HTTP: auth, validation, the record shape, cancel, resume, logs, OpenAPI.
Jobs run the fake training program (tests/helpers/fake_train.py), so these are fast."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.helpers.app_helpers import detail_text
from tests.helpers.job_helpers import FAKE_PROGRAM, kill_leftovers, wait_for

TOKEN = "jobs-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _settings(tmp_path, **overrides) -> Settings:
    (tmp_path / "data").mkdir(exist_ok=True)
    values = {
        "store_dir": tmp_path / "store",
        "data_dir": tmp_path / "data",
        "cache_dir": tmp_path / "cache",
        "poll_interval_s": 0,
        "api_token": TOKEN,
        "job_program": list(FAKE_PROGRAM),
        "job_poll_interval_s": 0.05,
    }
    return Settings(**{**values, **overrides})


def fake(tmp_path, mode: str) -> str:
    """A data file whose name tells the fake trainer what to do (paths must exist)."""
    (tmp_path / "data" / mode).touch()
    return mode


@pytest.fixture
def client(tmp_path):
    with TestClient(create_app(_settings(tmp_path))) as c:
        yield c
    kill_leftovers(tmp_path / "store")


def _wait_status(client, job_id, *statuses, timeout_s=20.0):
    return wait_for(
        lambda: (
            (body := client.get(f"/jobs/{job_id}", headers=AUTH).json())["status"] in statuses
            and body
        ),
        timeout_s=timeout_s,
        what=f"job {job_id} to be {statuses}",
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/jobs"),
        ("get", "/jobs"),
        ("get", "/jobs/x"),
        ("get", "/jobs/x/logs"),
        ("delete", "/jobs/x"),
        ("post", "/jobs/x/resume"),
    ],
)
def test_every_job_endpoint_needs_the_token(client, method, path):
    kwargs = {"json": {"preset": "smoke"}} if method == "post" else {}
    missing = client.request(method, path, **kwargs)
    assert missing.status_code == 401 and "missing bearer token" in detail_text(missing.json())
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    wrong = client.request(method, path, headers={"Authorization": "Bearer nope"}, **kwargs)
    assert wrong.status_code == 401 and "wrong" in detail_text(wrong.json())
    assert client.get("/jobs").status_code == 401
    assert client.get("/healthz").status_code == 200  # read endpoints stay public


def test_without_a_configured_token_job_endpoints_are_refused(tmp_path):
    with TestClient(create_app(_settings(tmp_path, api_token=None))) as c:
        response = c.post("/jobs", json={"preset": "smoke"}, headers=AUTH)
    assert response.status_code == 403
    assert "SHARDLENS_API_TOKEN" in detail_text(response.json())


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"preset": "huge"}, "body.preset"),
        ({"preset": "smoke", "num_chains": 0}, "body.num_chains"),
        ({"preset": "smoke", "num_results": -3}, "body.num_results"),
        ({"preset": "smoke", "step_size": 0.1}, "body.step_size"),  # extra fields forbidden
        ({"preset": "smoke", "force_publish": "yes"}, "body.force_publish"),  # a JSON bool
        ({"preset": "smoke", "data": "../outside"}, "outside the data root"),
        ({"preset": "smoke", "data": "/etc"}, "outside the data root"),
        ({"preset": "smoke", "data": "escape"}, "outside the data root"),
        ({"preset": "smoke", "data": "missing.zip"}, "does not exist"),
    ],
)
def test_invalid_configs_and_path_escapes_get_422(client, tmp_path, body, where):
    (tmp_path / "secret").mkdir(exist_ok=True)
    link = tmp_path / "data" / "escape"
    if not link.is_symlink():
        link.symlink_to(tmp_path / "secret")
    response = client.post("/jobs", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert where in detail_text(response.json())
    assert client.get("/jobs", headers=AUTH).json()["total"] == 0


@pytest.mark.slow
def test_job_lifecycle_over_http(client, tmp_path):
    (tmp_path / "data" / "ml-1m").mkdir()
    created = client.post(
        "/jobs",
        json={"preset": "smoke", "data": fake(tmp_path, "fake:succeed:0.2"), "seed": 3},
        headers=AUTH,
    )
    assert created.status_code == 202
    job = created.json()
    assert created.headers["Location"] == f"/jobs/{job['id']}"
    assert job["status"] in ("queued", "running")
    source = str((tmp_path / "data" / "fake:succeed:0.2").resolve())
    assert job["config"] == {"preset": "smoke", "data": source, "seed": 3}
    done = _wait_status(client, job["id"], "succeeded")
    assert done["version"] == f"fake-{job['id'][:8]}" and done["error"] is None
    progress = done["progress"]
    assert progress["phase"] == "sampling" and progress["iteration"] == progress["total"] == 4
    assert progress["fraction"] == 1.0 and progress["leapfrog_per_s"] == 100.0
    for key in ("created_at", "started_at", "finished_at"):
        assert datetime.fromisoformat(done[key]).tzinfo is not None
    logs = client.get(f"/jobs/{job['id']}/logs", params={"lines": 1}, headers=AUTH).json()
    assert logs["status"] == "succeeded" and len(logs["lines"]) == 1
    assert "fake training argv" in logs["lines"][0]

    # A path inside the data root is resolved before it is stored.
    inside = client.post("/jobs", json={"preset": "smoke", "data": "ml-1m"}, headers=AUTH)
    assert inside.json()["config"]["data"] == "ml-1m"  # a named source stays as it is
    queued = client.post("/jobs", json={"data": "./ml-1m/"}, headers=AUTH).json()
    assert queued["config"]["data"] == str((tmp_path / "data" / "ml-1m").resolve())

    page = client.get("/jobs", params={"limit": 2}, headers=AUTH).json()
    assert page["total"] == 3 and [j["id"] for j in page["jobs"]][1] == inside.json()["id"]
    assert page["jobs"][0]["id"] == queued["id"]  # newest first
    second = client.get("/jobs", params={"limit": 2, "offset": 2}, headers=AUTH).json()
    assert [j["id"] for j in second["jobs"]] == [job["id"]]
    only = client.get("/jobs", params={"status": "succeeded"}, headers=AUTH).json()
    assert job["id"] in [j["id"] for j in only["jobs"]]
    assert client.get("/jobs", params={"status": "bogus"}, headers=AUTH).status_code == 422
    assert client.get("/jobs/nope", headers=AUTH).status_code == 404
    assert client.delete(f"/jobs/{job['id']}", headers=AUTH).status_code == 409
    assert client.post(f"/jobs/{job['id']}/resume", headers=AUTH).status_code == 409


@pytest.mark.slow
def test_cancel_and_resume_over_http(client, tmp_path):
    body = {"data": fake(tmp_path, "fake:sleep:30")}
    job = client.post("/jobs", json=body, headers=AUTH).json()
    wait_for(
        lambda: client.get(f"/jobs/{job['id']}", headers=AUTH).json()["progress"]["iteration"],
        what="progress",
    )
    cancelling = client.delete(f"/jobs/{job['id']}", headers=AUTH)
    assert cancelling.status_code == 202 and cancelling.json()["cancel_requested"]
    done = _wait_status(client, job["id"], "cancelled")
    assert done["version"] is None and done["error"] == "cancelled on request"
    resumed = client.post(f"/jobs/{job['id']}/resume", headers=AUTH)
    assert resumed.status_code == 202 and resumed.headers["Location"] == f"/jobs/{job['id']}"
    _wait_status(client, job["id"], "running")
    lines = client.get(f"/jobs/{job['id']}/logs", headers=AUTH).json()["lines"]
    assert any(line.startswith("=== attempt 2") and "--resume" in line for line in lines)
    client.delete(f"/jobs/{job['id']}", headers=AUTH)
    assert _wait_status(client, job["id"], "cancelled")["attempts"] == 2


def test_openapi_documents_the_job_endpoints(client):
    schema = client.get("/openapi.json").json()
    post = schema["paths"]["/jobs"]["post"]
    assert post["summary"] and "Location" in post["responses"]["202"]["headers"]
    assert {"202", "401", "403", "422"} <= set(post["responses"])
    assert schema["components"]["schemas"]["JobConfig"]["additionalProperties"] is False
    for path in ("/jobs/{job_id}", "/jobs/{job_id}/logs", "/jobs/{job_id}/resume"):
        for operation in schema["paths"][path].values():
            assert operation["summary"] and "404" in operation["responses"]
    assert "JobRecord" in schema["components"]["schemas"]


@pytest.mark.slow
def test_server_restart_reattaches_a_running_job(tmp_path):
    settings = _settings(tmp_path)
    with TestClient(create_app(settings)) as first:
        job = first.post("/jobs", json={"data": fake(tmp_path, "fake:sleep:2")}, headers=AUTH)
        job_id = job.json()["id"]
        wait_for(
            lambda: first.get(f"/jobs/{job_id}", headers=AUTH).json()["progress"]["iteration"],
            what="progress",
        )
    # The server is gone; the training process is not. The next server takes the job over.
    with TestClient(create_app(settings)) as second:
        assert second.get(f"/jobs/{job_id}", headers=AUTH).json()["status"] == "running"
        done = _wait_status(second, job_id, "succeeded")
    assert done["attempts"] == 1 and done["version"]


def test_a_server_with_run_jobs_off_only_queues(tmp_path):
    with TestClient(create_app(_settings(tmp_path, run_jobs=False))) as c:
        job = c.post("/jobs", json={"preset": "smoke"}, headers=AUTH).json()
        assert c.app.state.job_runner is None
        assert c.get(f"/jobs/{job['id']}", headers=AUTH).json()["status"] == "queued"
        assert c.delete(f"/jobs/{job['id']}", headers=AUTH).json()["status"] == "cancelled"


def test_an_unwritable_store_serves_but_refuses_jobs_with_503(tmp_path):
    (tmp_path / "not-a-folder").write_text("")
    settings = _settings(tmp_path, store_dir=tmp_path / "not-a-folder" / "store")
    with TestClient(create_app(settings)) as c:
        assert c.get("/healthz").status_code == 200
        response = c.get("/jobs", headers=AUTH)
    assert response.status_code == 503
    assert "cannot be opened" in detail_text(response.json())
