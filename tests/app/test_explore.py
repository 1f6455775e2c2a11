"""GET /explore/...: id and title search, random users, profiles with entropy percentiles."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.explore.index import build_explore_index, pick_entropies, search_user_ids
from app.main import create_app
from tests.helpers.app_helpers import app_settings, publish, tiny_data


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    return store, publish(store, tiny_data(num_users=30, num_movies=24), draws=8, chains=2)


@pytest.fixture(scope="module")
def client(published):
    store, _ = published
    with TestClient(create_app(app_settings(store, poll_interval_s=0))) as client:
        yield client


def reference_entropy(row: np.ndarray) -> float:
    valid = row[row >= 0]
    if valid.size == 0:
        return 0.0
    return -sum(c / valid.size * math.log2(c / valid.size) for c in Counter(valid).values())


def test_pick_entropies_match_the_formula_row_by_row():
    rng = np.random.default_rng(0)
    picks = rng.integers(-1, 6, size=(37, 19)).astype(np.int16)
    picks[3] = -1  # a user without any pick
    picks[4] = 2  # every sample agrees
    got = pick_entropies(picks, chunk_users=8)  # several chunks, the last one partial
    expected = [reference_entropy(row) for row in picks]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert got[3] == 0.0 and got[4] == 0.0


def test_id_prefix_search_lists_short_ids_first_and_counts_all():
    ids = ["tt10", "tt1", "tt2", "a", "tt100", "ttx", "b/", "tt1é"]
    index = build_explore_index(ids, ["x"], np.zeros((len(ids), 2), dtype=np.int16))
    found = search_user_ids(index, "tt1", limit=3)
    assert [ids[i] for i in found.users] == ["tt1", "tt10", "tt1é"]
    assert found.total == 4  # tt100 counted, beyond the limit
    assert search_user_ids(index, "zz", limit=5) == ([], 0)
    assert [ids[i] for i in search_user_ids(index, "tt1é", limit=5).users] == ["tt1é"]


def test_user_search_by_prefix(client, published):
    _, pub = published
    ids = [str(u) for u in pub.data.user_ids]
    body = client.get("/explore/users", params={"prefix": "1", "limit": 5}).json()
    matching = sorted((u for u in ids if u.startswith("1")), key=lambda u: (len(u), u))
    assert [u["user_id"] for u in body["users"]] == matching[:5]
    assert body["total"] == len(matching) and body["model_version"] == pub.version
    counts = dict(zip(ids, pub.data.watch_counts.tolist(), strict=True))
    assert all(u["watched_count"] == counts[u["user_id"]] for u in body["users"])
    assert client.get("/explore/users", params={"prefix": "999"}).json()["users"] == []
    assert client.get("/explore/users").status_code == 422  # prefix is required
    assert client.get("/explore/users", params={"prefix": "1", "limit": 0}).status_code == 422


def test_movie_search_by_title(client, published):
    _, pub = published
    data = pub.data
    watchers = np.bincount(data.movie_index, minlength=data.num_movies)
    body = client.get("/explore/movies", params={"query": "STORM", "limit": 50}).json()
    matching = [j for j, t in enumerate(data.titles) if "storm" in t.lower()]
    assert matching, "the synthetic titles should include a storm"
    assert body["total"] == len(matching)
    assert sorted(m["movie_id"] for m in body["movies"]) == sorted(
        str(data.movie_ids[j]) for j in matching
    )
    got_counts = [m["watch_count"] for m in body["movies"]]
    assert got_counts == sorted(got_counts, reverse=True)  # no title starts with "storm"
    assert got_counts == sorted(watchers[matching].tolist(), reverse=True)
    first = data.titles[0]
    starts = client.get("/explore/movies", params={"query": first[:8]}).json()["movies"]
    assert all(m["title"].lower().startswith(first[:8].lower()) for m in starts[:1])
    assert client.get("/explore/movies", params={"query": "   "}).status_code == 422
    assert client.get("/explore/movies", params={"query": "no such film"}).json()["total"] == 0


def test_random_user_is_a_served_user(client, published):
    _, pub = published
    ids = {str(u) for u in pub.data.user_ids}
    drawn = {client.get("/explore/random-user").json()["user_id"] for _ in range(40)}
    assert drawn <= ids and len(drawn) > 1


def test_profile_history_genres_and_entropy_scale(client, published):
    _, pub = published
    data = pub.data
    watchers = np.bincount(data.movie_index, minlength=data.num_movies)
    entropies = []
    profiles = []
    for user in range(data.num_users):
        user_id = str(data.user_ids[user])
        profile = client.get(f"/explore/users/{user_id}", params={"limit": 5}).json()
        rec = client.get(f"/recommend/{user_id}", params={"k": 1}).json()
        # The precomputed entropy is the one GET /recommend reports for the same picks.
        assert profile["entropy"]["entropy_bits"] == pytest.approx(
            rec["uncertainty"]["entropy_bits"], abs=1e-9
        )
        entropies.append(profile["entropy"]["entropy_bits"])
        profiles.append(profile)
        watched = data.watched_by(user)
        assert profile["watched_count"] == len(watched)
        history = [m["movie_id"] for m in profile["history"]]
        expected = sorted(watched.tolist(), key=lambda j: (-watchers[j], j))[:5]
        assert history == [str(data.movie_ids[j]) for j in expected]
        firsts = Counter(data.genres[j][0] for j in watched)
        shares = {g["genre"]: (g["count"], g["share"]) for g in profile["genre_shares"]}
        assert shares == {g: (c, pytest.approx(c / len(watched))) for g, c in firsts.items()}
        scale = profile["entropy"]
        assert scale["num_samples"] == 16
        assert scale["candidates"] == data.num_movies - len(watched)
        assert scale["max_bits"] == pytest.approx(math.log2(min(16, scale["candidates"])))
        assert 0 <= scale["entropy_bits"] <= scale["max_bits"] + 1e-9
    for profile, entropy in zip(profiles, entropies, strict=True):
        at_most = sum(e <= entropy + 1e-9 for e in entropies)
        assert profile["entropy"]["percentile"] == pytest.approx(100 * at_most / len(entropies))
    assert max(p["entropy"]["percentile"] for p in profiles) == pytest.approx(100.0)


def test_explore_errors_and_openapi(client, tmp_path):
    missing = client.get("/explore/users/987654")
    assert missing.status_code == 404 and "GET /users" in missing.json()["detail"]
    assert client.get("/explore/users/1", params={"limit": 0}).status_code == 422
    spec = client.get("/openapi.json").json()
    for path, statuses in {
        "/explore/users": {"200", "422", "503"},
        "/explore/movies": {"200", "422", "503"},
        "/explore/random-user": {"200", "404", "503"},
        "/explore/users/{user_id}": {"200", "404", "422", "503"},
    }.items():
        operation = spec["paths"][path]["get"]
        assert statuses <= set(operation["responses"]), path
        assert operation["tags"] == ["explore"]
    schemas = spec["components"]["schemas"]
    for name in ("UserSearchResponse", "MovieSearchResponse", "UserProfileResponse"):
        assert schemas[name]["examples"], name
    with TestClient(create_app(app_settings(tmp_path / "empty", poll_interval_s=0))) as empty:
        for url in ("/explore/users?prefix=1", "/explore/random-user", "/explore/users/1"):
            assert empty.get(url).status_code == 503, url
