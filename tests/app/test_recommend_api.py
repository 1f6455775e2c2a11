"""The recommendation endpoints as a client uses them: k as a count, rank modes, exclusions,
fold-in (POST /recommend), batch; and the HTTP conventions: HEAD, ETag/304, Cache-Control,
request ids, /metrics, repeated JSON keys."""

from __future__ import annotations

import re
from collections import Counter

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.__main__ import log_config
from app.main import create_app
from tests.helpers.app_helpers import app_settings, detail_text, publish, reference_picks, tiny_data
from tests.helpers.live_server import live_server

TOKEN = "recommend-token"
NUM_SAMPLES = 16


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    store = tmp_path_factory.mktemp("recommend") / "store"
    return store, publish(store, tiny_data(num_users=30, num_movies=24), draws=8, chains=2)


@pytest.fixture(scope="module")
def client(published):
    store, _ = published
    settings = app_settings(store, poll_interval_s=7, api_token=TOKEN, batch_max_users=4)
    with TestClient(create_app(settings)) as client:
        yield client


def ids(data, indices) -> list[str]:
    return [str(data.movie_ids[j]) for j in indices]


@pytest.mark.parametrize("rank", ["picks", "probability"])
def test_k_is_a_count_in_both_modes(client, published, rank):
    _, pub = published
    data = pub.data
    for user in (0, 5, 11):
        unwatched = data.num_movies - len(data.watched_by(user))
        for k in (1, 3, unwatched, 500):
            url = f"/recommend/{data.user_ids[user]}"
            body = client.get(url, params={"k": k, "rank": rank}).json()
            recs = body["recommendations"]
            assert len(recs) == min(k, unwatched)
            assert (body["rank"], body["k"], body["candidates"]) == (rank, k, unwatched)
            if rank == "probability":
                probs = [r["probability"] for r in recs]
                assert probs == sorted(probs, reverse=True)
            # every item carries both figures
            assert all(r["count"] >= 0 and 0 <= r["probability"] <= 1 for r in recs)


def test_exclusions_drop_movies_and_recount_the_picks(client, published):
    _, pub = published
    data = pub.data
    user = 2
    first = client.get(f"/recommend/{data.user_ids[user]}", params={"k": 3}).json()
    top = [r["movie_id"] for r in first["recommendations"][:3]]
    params = [("exclude", f"{top[0]},{top[1]}"), ("exclude", top[2]), ("k", 100)]
    body = client.get(f"/recommend/{data.user_ids[user]}", params=params).json()
    got = [r["movie_id"] for r in body["recommendations"]]
    assert not set(top) & set(got)
    assert body["exclude"] == sorted(top)
    eligible = ~np.isin(np.array(ids(data, range(data.num_movies))), top)
    expected = Counter(reference_picks(pub.samples, data, user, eligible))
    counts = {r["movie_id"]: r["count"] for r in body["recommendations"] if r["count"]}
    assert counts == dict(zip(ids(data, expected), expected.values(), strict=True))
    assert body["candidates"] == first["candidates"] - 3


def test_unknown_exclusions_are_a_422_naming_them(client, published):
    _, pub = published
    response = client.get(
        f"/recommend/{pub.data.user_ids[0]}", params={"exclude": f"nope-1,{pub.data.movie_ids[0]}"}
    )
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["query", "exclude"] and "nope-1" in problem["msg"]
    # Only the unknown id is named (the message's version id may contain the known one's digits).
    named = problem["msg"].split(f"version {pub.version}: ", 1)[1].split(";", 1)[0]
    assert named == "nope-1" and problem["input"] == ["nope-1"]


def test_a_filter_that_leaves_nothing_reports_null_entropy(client, published):
    _, pub = published
    data = pub.data
    user = 0
    every = ",".join(ids(data, range(data.num_movies)))
    body = client.get(f"/recommend/{data.user_ids[user]}", params={"exclude": every}).json()
    assert body["recommendations"] == [] and body["candidates"] == 0
    assert body["uncertainty"]["entropy_bits"] is None
    assert "no candidate" in body["uncertainty"]["note"]
    assert body["genres"] == []


def test_fold_in_shape_determinism_and_exclusions(client, published):
    _, pub = published
    data = pub.data
    user = 4
    watched = ids(data, data.watched_by(user))
    request = {"watched": watched, "k": 100, "rank": "probability"}
    body = client.post("/recommend", json=request).json()
    assert body["user_id"] is None and body["watched_count"] == len(watched)
    assert body["fold_in"]["method"] == "laplace" and body["fold_in"]["watched"] == len(watched)
    assert body["fold_in"]["cold_start"] is False and body["fold_in"]["prior_scale"] == 1.0
    recs = body["recommendations"]
    assert len(recs) == data.num_movies - len(watched) and not {r["movie_id"] for r in recs} & set(
        watched
    )
    assert sum(r["count"] for r in recs) == NUM_SAMPLES
    assert client.post("/recommend", json=request).json() == body  # seeded by version + list
    # The folded-in user resembles the user whose watches they are.
    known = client.get(
        f"/recommend/{data.user_ids[user]}", params={"k": 100, "rank": "probability"}
    ).json()
    by_id = {r["movie_id"]: r["probability"] for r in known["recommendations"]}
    folded = [r["probability"] for r in recs]
    mine = [by_id[r["movie_id"]] for r in recs]
    assert np.corrcoef(np.argsort(np.argsort(folded)), np.argsort(np.argsort(mine)))[0, 1] > 0.5
    dropped = client.post("/recommend", json={**request, "exclude": [recs[0]["movie_id"]]}).json()
    assert recs[0]["movie_id"] not in {r["movie_id"] for r in dropped["recommendations"]}


def test_fold_in_without_watches_is_the_prior_predictive(client):
    body = client.post("/recommend", json={"k": 5}).json()
    assert body["fold_in"] == {
        "method": "prior",
        "watched": 0,
        "cold_start": True,
        "prior_scale": 1.0,
        "newton_steps": 0,
    }
    assert len(body["recommendations"]) == 5 and body["watched_count"] == 0


def test_fold_in_refuses_unknown_movies_naming_them(client):
    response = client.post("/recommend", json={"watched": ["1", "no-such-movie"]})
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "watched"] and "no-such-movie" in problem["msg"]


def test_batch_answers_each_id_in_order_with_per_item_errors(client, published):
    _, pub = published
    data = pub.data
    users = [str(data.user_ids[3]), "nobody", str(data.user_ids[7])]
    body = client.post("/recommend/batch", json={"user_ids": users, "k": 4}).json()
    assert [r["user_id"] for r in body["results"]] == users
    assert [r["status"] for r in body["results"]] == [200, 404, 200]
    assert "nobody" in body["results"][1]["error"] and body["results"][1]["result"] is None
    single = client.get(f"/recommend/{users[0]}", params={"k": 4}).json()
    assert body["results"][0]["result"] == single
    too_many = client.post("/recommend/batch", json={"user_ids": ["1"] * 5})
    assert too_many.status_code == 422
    assert "SHARDLENS_BATCH_MAX_USERS=4" in detail_text(too_many.json())
    schema = client.get("/openapi.json").json()["components"]["schemas"]["BatchRequest"]
    assert schema["properties"]["user_ids"]["maxItems"] == 4


def test_head_answers_every_get_route(client, published):
    _, pub = published
    user, movie = str(pub.data.user_ids[0]), str(pub.data.movie_ids[0])
    paths = [
        "/",
        "/healthz",
        "/readyz",
        "/model",
        "/metrics",
        f"/recommend/{user}",
        f"/users/{user}",
        "/users",
        f"/movies/{movie}",
        "/model/files/plots/trace.png",
        "/recommend/nobody",
    ]
    for path in paths:
        get, head = client.get(path), client.head(path)
        assert head.status_code == get.status_code, path
        assert head.content == b"", path
        if "content-length" in get.headers and path != "/metrics":
            assert head.headers["content-length"] == get.headers["content-length"], path
    jobs = client.head("/jobs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert jobs.status_code == 200 and jobs.content == b""


def test_etag_and_cache_control(client, published):
    _, pub = published
    url = f"/recommend/{pub.data.user_ids[1]}"
    first = client.get(url, params=[("k", 5), ("genre", "Drama"), ("genre", "Comedy")])
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, max-age=7"  # the poll interval
    # The same query, normalised (genre order, default rank spelled out), has the same tag.
    same = client.get(
        url, params=[("genre", "Comedy"), ("genre", "Drama"), ("k", 5), ("rank", "picks")]
    )
    assert same.headers["etag"] == etag
    cached = client.get(url, params=[("k", 5), ("genre", "Drama"), ("genre", "Comedy")],
                        headers={"If-None-Match": etag})  # fmt: skip
    assert cached.status_code == 304 and cached.content == b"" and cached.headers["etag"] == etag
    other = client.get(url, params={"k": 6}, headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag
    model = client.get("/model")
    again = client.get("/model", headers={"If-None-Match": f"W/{model.headers['etag']}"})
    assert again.status_code == 304


def test_request_id_is_returned_or_made(client):
    given = client.get("/healthz", headers={"X-Request-ID": "0123456789abcdef0123456789abcdef"})
    assert given.headers["x-request-id"] == "0123456789abcdef0123456789abcdef"
    made = client.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)


def test_metrics_report_requests_model_cache_and_jobs(client, published):
    _, pub = published
    client.get(f"/recommend/{pub.data.user_ids[0]}")
    client.get("/recommend/nobody")
    text = client.get("/metrics").text
    assert re.search(
        r'http_requests_total\{handler="/recommend/\{user_id\}",method="GET",status="404"\} [1-9]',
        text,
    )
    assert re.search(
        r'http_request_duration_seconds_bucket\{handler="/recommend/\{user_id\}",le="0.001",'
        r'method="GET",status="200"\}',
        text,
    )
    assert f'shardlens_model_info{{convergence="not_recorded",version="{pub.version}"}} 1.0' in text
    assert re.search(r"shardlens_model_load_seconds \d", text)
    assert 'shardlens_picks_cache_total{result="miss"} 4.0' in text
    assert 'shardlens_jobs{status="queued"} 0.0' in text


@pytest.mark.parametrize(
    ("path", "body", "key"),
    [
        ("/jobs", '{"preset": "smoke", "seed": 1, "seed": 2}', "seed"),
        ("/recommend", '{"k": 1, "watched": [], "k": 2}', "k"),
        ("/recommend/batch", '{"user_ids": ["1"], "rank": "picks", "rank": "probability"}', "rank"),
    ],
)
def test_a_repeated_json_key_is_a_422_naming_it(client, path, body, key):
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", key] and f"'{key}'" in problem["msg"]


def test_log_lines_carry_the_request_id(tmp_path):
    """Every log line of a request names its id: here uvicorn's access line, live."""
    store = tmp_path / "store"
    publish(store, tiny_data(num_users=8, num_movies=6))
    log_file = tmp_path / "server.log"
    with (
        live_server(
            store, cache_dir=tmp_path / "cache", log_level="info", log_file=log_file
        ) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as http,
    ):
        http.get("/recommend/1", headers={"X-Request-ID": "feedc0de" * 4})
    lines = [line for line in log_file.read_text().splitlines() if "/recommend/1" in line]
    assert lines and all("[request feedc0defeedc0defeedc0defeedc0de]" in line for line in lines)
    config = log_config("info")
    assert all("request_id" in h["filters"] for h in config["handlers"].values())


def test_openapi_declares_every_status_with_an_example_and_readable_ids(client):
    spec = client.get("/openapi.json").json()
    assert spec["info"]["version"] == "0.3.0"
    operation_ids = []
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            operation_ids.append(operation["operationId"])
            for code, response in operation["responses"].items():
                if int(code) >= 400:
                    content = response["content"]["application/json"]
                    assert "example" in content or "examples" in content, (method, path, code)
            if "requestBody" in operation:
                assert {"400", "413"} <= set(operation["responses"]), (method, path)
    assert "recommend_for_user" in operation_ids and "recommend_by_fold_in" in operation_ids
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", op) for op in operation_ids), operation_ids
    assert len(set(operation_ids)) == len(operation_ids)
    version = re.compile(r"\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{4}")
    text = str(spec)
    assert version.search(text) and "20261127T0740-" not in text  # the real id format
