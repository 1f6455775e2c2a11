"""Every endpoint and every error, through TestClient (as a context manager)."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.serving.queries import Query as ScoreQuery
from app.serving.queries import scores_samples
from tests.helpers.app_helpers import app_settings, detail_text, publish, reference_picks, tiny_data

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    return store, publish(store, tiny_data(num_users=30, num_movies=24), draws=8, chains=2)


@pytest.fixture(scope="module")
def client(published):
    store, _ = published
    settings = app_settings(store, poll_interval_s=0, api_token=TOKEN)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def empty_client(tmp_path):
    with TestClient(create_app(app_settings(tmp_path / "empty", poll_interval_s=0))) as c:
        yield c


def test_recommend_counts_match_the_reference(client, published):
    _, pub = published
    data = pub.data
    for user in range(data.num_users):
        user_id = str(data.user_ids[user])
        body = client.get(f"/recommend/{user_id}", params={"k": 100}).json()
        expected = Counter(reference_picks(pub.samples, data, user))
        got = {r["movie_id"]: r["count"] for r in body["recommendations"] if r["count"]}
        assert got == {str(data.movie_ids[j]): c for j, c in expected.items()}
        assert body["model_version"] == pub.version
        assert body["num_samples"] == 16
        assert body["watched_count"] == len(data.watched_by(user))
        # k is a count: every unwatched movie, the never-picked ones with count 0.
        unwatched = data.num_movies - len(data.watched_by(user))
        assert len(body["recommendations"]) == body["candidates"] == unwatched
        keys = [(-r["count"], -r["probability"]) for r in body["recommendations"]]
        assert keys == sorted(keys)
        assert sum(g["count"] for g in body["genres"]) == sum(expected.values())
        assert body["uncertainty"]["distinct_movies"] == len(expected)
        assert body["uncertainty"]["top_share"] == pytest.approx(max(expected.values()) / 16)


def test_recommend_shape_and_k(client, published):
    _, pub = published
    user_id = str(pub.data.user_ids[0])
    body = client.get(f"/recommend/{user_id}", params={"k": 1}).json()
    assert len(body["recommendations"]) == 1
    rec = body["recommendations"][0]
    assert set(rec) == {
        "movie_id", "title", "genres", "count", "share", "probability", "interval",
    }  # fmt: skip
    assert rec["share"] == pytest.approx(rec["count"] / 16)
    interval = rec["interval"]
    assert interval["level"] == 0.9
    assert 0 <= interval["low"] <= rec["probability"] <= interval["high"] <= 1
    assert (body["user_id"], body["rank"], body["k"], body["fold_in"]) == (
        user_id,
        "picks",
        1,
        None,
    )
    watched = set(pub.data.movie_ids[pub.data.watched_by(0)].astype(str).tolist())
    assert isinstance(rec["movie_id"], str) and rec["movie_id"] not in watched


def test_genre_filter(client, published):
    _, pub = published
    data = pub.data
    genre = data.first_genre[0]
    eligible = np.array([genre in g for g in data.genres])
    for user in range(0, data.num_users, 3):
        user_id = str(data.user_ids[user])
        response = client.get(f"/recommend/{user_id}", params=[("genre", genre), ("k", 100)])
        assert response.status_code == 200
        body = response.json()
        assert body["genre_filter"] == [genre]
        expected = Counter(reference_picks(pub.samples, data, user, eligible))
        got = {r["movie_id"]: r["count"] for r in body["recommendations"] if r["count"]}
        assert got == {str(data.movie_ids[j]): c for j, c in expected.items()}
        assert all(genre in r["genres"] for r in body["recommendations"])
        unwatched = eligible.copy()
        unwatched[data.watched_by(user)] = False
        assert len(body["recommendations"]) == unwatched.sum() == body["candidates"]
        if not unwatched.any():
            assert body["uncertainty"]["entropy_bits"] is None
            assert "no candidate" in body["uncertainty"]["note"]


def test_two_genres_widen_the_candidates(client, published):
    _, pub = published
    user_id = str(pub.data.user_ids[1])
    names = sorted(set(pub.data.first_genre))[:2]
    body = client.get(f"/recommend/{user_id}", params=[("genre", g) for g in names]).json()
    assert body["genre_filter"] == names
    assert all(set(r["genres"]) & set(names) for r in body["recommendations"])


def test_genre_answers_do_not_depend_on_precomputed_genre_picks(client, published):
    """Genre picks precomputed at load (the default) or computed per request
    (`SHARDLENS_GENRE_PICKS_MAX_MB=0`) give the same answers, for one genre or several,
    exclusions included."""
    store, pub = published
    data = pub.data
    assert client.app.state.holder.current.genre_picks is not None
    settings = app_settings(store, poll_interval_s=0, genre_picks_max_mb=0, cache_dir=None)
    with TestClient(create_app(settings)) as per_request:
        assert per_request.app.state.holder.current.genre_picks is None
        for user in range(0, data.num_users, 4):
            user_id = str(data.user_ids[user])
            names = sorted(set(data.first_genre))
            for chosen in [[g] for g in names] + [names[:2], names[1:4]]:
                genre = [("genre", g) for g in chosen]
                first = client.get(f"/recommend/{user_id}", params=[*genre, ("k", 3)])
                excluded = [r["movie_id"] for r in first.json()["recommendations"][:2]]
                for extra in ([], [("exclude", m) for m in excluded]):
                    params = [*genre, ("k", 100), *extra]
                    assert (
                        client.get(f"/recommend/{user_id}", params=params).json()
                        == per_request.get(f"/recommend/{user_id}", params=params).json()
                    )


def test_only_exclusions_or_uncomputed_genres_score_samples(client, published):
    _, pub = published
    served = client.app.state.holder.current
    names = sorted(set(pub.data.first_genre))

    def query(genres, excluded):
        return ScoreQuery(k=5, rank="picks", genres=genres, exclude=[], excluded=excluded)

    assert not scores_samples(served, query([], []))
    assert not scores_samples(served, query(names[:1], []))
    assert not scores_samples(served, query(names[:2], []))
    assert scores_samples(served, query(names[:1], [0]))
    assert scores_samples(served, query([], [0]))
    assert scores_samples(dataclasses.replace(served, genre_picks=None), query(names[:1], []))


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("/recommend/1?k=0", "query.k"),
        ("/recommend/1?k=100001", "query.k"),
        ("/recommend/1?rank=best", "query.rank"),
        ("/recommend/1?k=ten", "query.k"),
        ("/recommend/1?genre=Polka", "Western"),  # the message lists the valid genres
        ("/recommend/%01", "path.user_id"),  # a control character is never an id
        ("/recommend/%201", "path.user_id"),  # nor is surrounding white space
        (f"/recommend/{'9' * 257}", "path.user_id"),  # nor 257 characters
        ("/users/1?offset=-1", "query.offset"),
        ("/users/1?limit=0", "query.limit"),
        ("/users/1?limit=5000", "query.limit"),
        ("/movies/%7F", "path.movie_id"),
    ],
)
def test_invalid_parameters_get_422_saying_what(client, path, needle):
    response = client.get(path)
    assert response.status_code == 422
    body = response.json()
    assert needle in detail_text(body) and body["detail"][0]["msg"]


@pytest.mark.parametrize(
    "path",
    [
        "/recommend/999999",
        f"/recommend/{2**63}",  # beyond int64: just an id nobody has
        "/recommend/-1",
        "/recommend/abc",
        "/recommend/007",  # ids are text: not user 7
        "/users/0",
        "/movies/99999",
        "/movies/1.5",
    ],
)
def test_unknown_ids_get_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "is not in posterior version" in detail_text(response.json())


def test_users_paging(client, published):
    _, pub = published
    data = pub.data
    user = int(np.argmax(data.watch_counts))
    user_id = str(data.user_ids[user])
    watched_ids = data.movie_ids[data.watched_by(user)].astype(str).tolist()
    body = client.get(f"/users/{user_id}", params={"offset": 1, "limit": 2}).json()
    assert body["watched_count"] == len(watched_ids)
    assert [m["movie_id"] for m in body["watched"]] == watched_ids[1:3]
    beyond = client.get(f"/users/{user_id}", params={"offset": 10**6}).json()
    assert beyond["watched"] == [] and beyond["watched_count"] == len(watched_ids)


def test_movie(client, published):
    _, pub = published
    data = pub.data
    body = client.get(f"/movies/{data.movie_ids[2]!s}").json()
    assert body["title"] == data.titles[2]
    assert body["genres"] == list(data.genres[2])
    assert body["watch_count"] == int(data.movie_counts[2])


def test_model_health_ready(client, published):
    _, pub = published
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert (ready["status"], ready["model_version"]) == ("ready", pub.version)
    assert ready["convergence"]["status"] == "not_recorded"  # published without a verdict
    body = client.get("/model").json()
    assert body["model_version"] == pub.version
    assert (body["num_users"], body["num_movies"], body["num_samples"]) == (30, 24, 16)
    assert body["diagnostics"]["max_rhat"] == 1.01
    assert body["diagnostics"]["ess"] == [10.0, 12.0]
    assert body["manifest"]["version"] == pub.version
    assert body["manifest"]["files"]["count"] >= 8 and body["manifest"]["files"]["bytes"] > 0
    assert body["last_load_error"] is None and body["load_seconds"] >= 0


def test_admin_reload_auth(client, published, tmp_path):
    _, pub = published
    assert client.post("/admin/reload").status_code == 401
    wrong = client.post("/admin/reload", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "wrong" in detail_text(wrong.json())
    ok = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert ok.json() == {"model_version": pub.version, "changed": False, "error": None}
    settings = app_settings(tmp_path, poll_interval_s=0)  # no token configured
    with TestClient(create_app(settings)) as closed:
        refused = closed.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert refused.status_code == 403
        assert "SHARDLENS_API_TOKEN" in detail_text(refused.json())


def test_no_model_gets_503_saying_how_to_train(empty_client):
    for path in ("/recommend/1", "/users/1", "/users", "/movies/1", "/model/files/x", "/readyz"):
        response = empty_client.get(path)
        assert response.status_code == 503, path
        assert "python -m training train --preset default" in detail_text(response.json())
    assert empty_client.get("/healthz").status_code == 200
    assert empty_client.get("/model").json()["model_version"] is None


def test_body_size_limit_and_closed_cors(tmp_path):
    settings = app_settings(tmp_path, poll_interval_s=0, api_token=TOKEN, max_body_bytes=10)
    with TestClient(create_app(settings)) as c:
        big = c.post("/admin/reload", content=b"x" * 100, headers={"Authorization": "Bearer x"})
        assert big.status_code == 413 and "SHARDLENS_MAX_BODY_BYTES" in detail_text(big.json())
        preflight = c.options(
            "/recommend/1",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in preflight.headers


def test_cors_when_configured(tmp_path):
    settings = app_settings(tmp_path, poll_interval_s=0, cors_origins=["https://ok.example"])
    with TestClient(create_app(settings)) as c:
        response = c.get("/healthz", headers={"Origin": "https://ok.example"})
        assert response.headers["access-control-allow-origin"] == "https://ok.example"


def test_openapi_declares_every_error(client):
    spec = client.get("/openapi.json").json()
    assert spec["info"]["version"] == "0.3.0"
    get = spec["paths"]["/recommend/{user_id}"]["get"]
    assert {"200", "404", "422", "503"} <= set(get["responses"])
    # Ids are strings everywhere: path parameters and response bodies.
    (param,) = [p for p in get["parameters"] if p["name"] == "user_id"]
    assert param["schema"]["type"] == "string"
    schemas = spec["components"]["schemas"]
    # null only for a folded-in user (POST /recommend)
    assert schemas["RecommendResponse"]["properties"]["user_id"]["anyOf"] == [
        {"type": "string"},
        {"type": "null"},
    ]
    assert schemas["MovieRecommendation"]["properties"]["movie_id"]["type"] == "string"
    assert schemas["UserSummary"]["properties"]["user_id"]["type"] == "string"
    assert schemas["MovieRef"]["properties"]["movie_id"]["type"] == "string"
    assert get["responses"]["200"]["content"]["application/json"]["schema"]
    reload = spec["paths"]["/admin/reload"]["post"]
    assert {"401", "403"} <= set(reload["responses"])
    assert "examples" in spec["components"]["schemas"]["RecommendResponse"]
    assert client.get("/docs").status_code == 200 and client.get("/redoc").status_code == 200


def test_user_list_sorted_by_watch_count(client, published):
    _, pub = published
    data = pub.data
    counts = data.watch_counts
    most = client.get("/users", params={"limit": 3}).json()
    assert [u["watched_count"] for u in most["users"]] == sorted(counts, reverse=True)[:3]
    least = client.get("/users", params={"sort": "least_watched", "limit": 2, "offset": 1}).json()
    assert [u["watched_count"] for u in least["users"]] == sorted(counts)[1:3]
    for u in most["users"]:
        index = data.user_ids.astype(str).tolist().index(u["user_id"])
        assert counts[index] == u["watched_count"]
    assert client.get("/users", params={"sort": "random"}).status_code == 422


def test_model_files_and_page(client, published):
    from tests.helpers.app_helpers import PNG

    model = client.get("/model").json()
    assert model["plots"] == ["plots/trace.png"]
    image = client.get("/model/files/plots/trace.png")
    assert image.status_code == 200 and image.content == PNG
    assert image.headers["content-type"] == "image/png"
    assert client.get("/model/files/notes/readme.txt").content == b"notes"
    for name in ("plots/missing.png", "../manifest.json", "users.npy", "%2e%2e/manifest.json"):
        response = client.get(f"/model/files/{name}")
        assert response.status_code == 404, name
    assert "has no file" in detail_text(client.get("/model/files/users.npy").json())
    page = client.get("/")
    assert page.status_code == 200 and "shardlens" in page.text
    assert client.get("/static/app.js").status_code == 200
