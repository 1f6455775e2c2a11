"""Security: the token guards every job and admin endpoint and never leaks; CORS is closed by
default; request bodies are limited."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.helpers.app_helpers import app_settings, detail_text, publish, tiny_data
from tests.helpers.live_server import live_server

TOKEN = "s3cr3t-7d1e4f0b9a2c"
JOB_ID = "0" * 32
# Every operation that needs the token (checked against the schema below).
PROTECTED = [
    ("POST", "/admin/reload"),
    ("POST", "/jobs"),
    ("GET", "/jobs"),
    ("GET", f"/jobs/{JOB_ID}"),
    ("GET", f"/jobs/{JOB_ID}/logs"),
    ("DELETE", f"/jobs/{JOB_ID}"),
    ("POST", f"/jobs/{JOB_ID}/resume"),
]
WRONG = [
    ({}, "missing bearer token"),
    ({"Authorization": "Bearer"}, "missing bearer token"),
    ({"Authorization": f"Basic {TOKEN}"}, "missing bearer token"),
    ({"Authorization": "Bearer not-the-token"}, "wrong bearer token"),
    ({"Authorization": f"Bearer {TOKEN[:-1]}"}, "wrong bearer token"),  # a prefix
    ({"Authorization": f"Bearer {TOKEN}0"}, "wrong bearer token"),  # an extension
]
FOREIGN = "https://evil.example"


def make_client(store, **overrides) -> TestClient:
    overrides = {"poll_interval_s": 0, "run_jobs": False, "data_dir": store.parent, **overrides}
    return TestClient(create_app(app_settings(store, **overrides)))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = tmp_path_factory.mktemp("security") / "store"
    publish(store, tiny_data(num_users=12, num_movies=10), seed=1)
    return store


def test_the_protected_list_covers_every_admin_and_job_operation(store):
    schema = make_client(store).app.openapi()
    operations = {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if path.startswith(("/admin", "/jobs"))
    }
    listed = {(m, p.replace(JOB_ID, "{job_id}")) for m, p in PROTECTED}
    assert operations == listed
    for method, path in operations:  # and the schema says they need the bearer token
        assert schema["paths"][path][method.lower()]["security"] == [{"HTTPBearer": []}]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_missing_or_wrong_token_is_refused(store, method, path):
    with make_client(store, api_token=TOKEN) as client:
        for headers, phrase in WRONG:
            response = client.request(method, path, headers=headers, json={"preset": "smoke"})
            assert response.status_code == 401, (headers, response.text)
            assert phrase in detail_text(response.json())
            assert response.headers["www-authenticate"] == "Bearer"
            assert TOKEN not in response.text and TOKEN[:-1] not in response.text
        listed = client.get("/jobs", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert listed["total"] == 0  # nothing was queued by a refused request


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_without_a_configured_token_the_endpoints_are_disabled(store, method, path):
    with make_client(store, api_token=None) as client:
        for headers in [{}, {"Authorization": "Bearer anything"}, {"Authorization": "Bearer "}]:
            response = client.request(method, path, headers=headers, json={"preset": "smoke"})
            assert response.status_code == 403, response.text
            assert "SHARDLENS_API_TOKEN" in detail_text(response.json())


def test_an_empty_configured_token_does_not_open_the_endpoints(store):
    with make_client(store, api_token="") as client:
        response = client.post("/admin/reload", headers={"Authorization": "Bearer "})
        assert response.status_code == 403


def test_cors_is_closed_by_default(store):
    with make_client(store) as client:
        simple = client.get("/readyz", headers={"Origin": FOREIGN})
        assert simple.status_code == 200
        assert "access-control-allow-origin" not in simple.headers
        preflight = client.options(
            "/jobs",
            headers={
                "Origin": FOREIGN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 405
        assert not any(h.startswith("access-control-") for h in preflight.headers)


def test_configured_cors_admits_only_the_listed_origin(store):
    allowed = "https://app.example"
    with make_client(store, cors_origins=[allowed]) as client:
        ok = client.get("/readyz", headers={"Origin": allowed})
        assert ok.headers["access-control-allow-origin"] == allowed
        foreign = client.get("/readyz", headers={"Origin": FOREIGN})
        assert "access-control-allow-origin" not in foreign.headers
        preflight = client.options(
            "/jobs", headers={"Origin": FOREIGN, "Access-Control-Request-Method": "POST"}
        )
        assert preflight.status_code == 400
        assert "access-control-allow-origin" not in preflight.headers


@pytest.mark.slow
def test_the_token_never_reaches_the_server_log(tmp_path):
    """A live server at trace level (every ASGI message logged), used with right and wrong
    tokens, jobs submitted and refused, bodies too large: its whole log lacks the token."""
    store = tmp_path / "store"
    data = tiny_data(num_users=12, num_movies=10)
    publish(store, data, seed=1)
    (tmp_path / "data").mkdir()
    log_file = tmp_path / "server.log"
    env = {
        "SHARDLENS_API_TOKEN": TOKEN,
        "SHARDLENS_RUN_JOBS": "false",
        "SHARDLENS_DATA_DIR": str(tmp_path / "data"),
        "SHARDLENS_MAX_BODY_BYTES": "4096",
    }
    auth = {"Authorization": f"Bearer {TOKEN}"}
    bodies = []
    with (
        live_server(
            store, cache_dir=tmp_path / "cache", env=env, log_level="trace", log_file=log_file
        ) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as client,
    ):
        publish(store, data, seed=2)
        bodies.append(client.post("/admin/reload", headers=auth))
        job = client.post("/jobs", headers=auth, json={"preset": "smoke", "seed": 3})
        bodies += [job, client.get("/jobs", headers=auth)]
        bodies.append(client.get(f"/jobs/{job.json()['id']}", headers=auth))
        bodies.append(client.delete(f"/jobs/{job.json()['id']}", headers=auth))
        for headers, _ in WRONG:
            bodies.append(client.post("/jobs", headers=headers, json={"preset": "smoke"}))
        bodies.append(client.post("/jobs", headers=auth, json={"data": "../x"}))
        bodies.append(client.post("/jobs", headers=auth, content=b"x" * 10_000))
        bodies.append(client.get("/nope", headers=auth))
        bodies.append(client.get("/recommend/abc", headers=auth))  # text ids: unknown
        bodies.append(client.get("/recommend/0?k=0", headers=auth))
    statuses = [r.status_code for r in bodies]
    assert statuses[:5] == [200, 202, 200, 200, 202], statuses
    assert statuses[5:] == [401] * len(WRONG) + [422, 413, 404, 404, 422], statuses
    for response in bodies:
        assert TOKEN not in response.text and TOKEN[:-1] not in response.text
    log = log_file.read_text(errors="replace")
    assert "ASGI [" in log and "POST /jobs" in log  # trace level really logged the requests
    assert TOKEN not in log and TOKEN[:-1] not in log
    assert server.process.returncode == 0, log
