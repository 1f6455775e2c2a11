"""Ids in the posterior store: text in format 2, and format-1 stores (int64 ids) still
read and served. The format-1 fixture was written by the code on main before ids became
text (tests/fixtures/make_store_v1.py, commit 155bfed; its manifest names the commit)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from storage.errors import StoreError
from storage.posterior import list_versions, open_posterior, publish_posterior
from tests.helpers.app_helpers import app_settings
from training.data.watch import build_watch_data

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "store_v1"
V1_USERS = ["405", "-5", "9007199254740993", "7"]  # factorized order; 2**53 + 1 is exact


@pytest.fixture
def v1_store(tmp_path):
    store = tmp_path / "store"
    shutil.copytree(FIXTURE, store)
    return store


def test_format_1_is_read_with_text_ids(v1_store):
    post = open_posterior(v1_store, verify=True)  # checksums as written by the old code
    assert post.manifest["format_version"] == 1 and "ids" not in post.manifest
    assert post.user_ids.tolist() == V1_USERS
    assert post.movie_ids.tolist() == ["1", "2", "3", "4"]
    assert post.id_kinds == {"users": "int", "movies": "int"}
    assert post.user_index("9007199254740993") == 2 and post.user_index("-5") == 1
    assert post.user_index("9007199254740992") is None  # no float rounding anywhere
    assert [v.num_users for v in list_versions(v1_store)] == [4]


def test_format_1_is_served(v1_store):
    with TestClient(create_app(app_settings(v1_store, poll_interval_s=0))) as client:
        body = client.get("/recommend/9007199254740993", params={"k": 5}).json()
        assert body["user_id"] == "9007199254740993" and body["watched_count"] == 2
        assert {r["movie_id"] for r in body["recommendations"]} <= {"1", "2"}
        negative = client.get("/recommend/-5")
        assert negative.status_code == 200 and negative.json()["user_id"] == "-5"
        listed = client.get("/users", params={"limit": 10}).json()["users"]
        assert sorted(u["user_id"] for u in listed) == sorted(V1_USERS)
        watched = client.get("/users/405").json()["watched"]
        assert [m["movie_id"] for m in watched] == ["1", "3"]


def _samples(n, m):
    rng = np.random.default_rng(1)
    return {
        "user_embeddings": rng.normal(size=(2, 1, n, 2)).astype(np.float32),
        "user_bias": rng.normal(size=(2, 1, n)).astype(np.float32),
        "movie_embeddings": rng.normal(size=(2, 1, m, 2)).astype(np.float32),
        "movie_bias": rng.normal(size=(2, 1, m)).astype(np.float32),
    }


def test_format_2_next_to_format_1(v1_store):
    data = build_watch_data(
        source="strings",
        rating_user_ids=np.array(["tt-a", "tt-a"], dtype=object),
        rating_movie_ids=np.array(["x1", "x2"], dtype=object),
        movie_catalog=None,
    )
    version = publish_posterior(v1_store, samples=_samples(1, 2), data=data, config={})
    post = open_posterior(v1_store, version)
    assert post.manifest["format_version"] == 2
    assert post.user_ids.dtype.kind == "U" and post.user_ids.tolist() == ["tt-a"]
    assert post.titles == ["x1", "x2"]  # no catalogue: the title is the id
    assert [v.num_users for v in list_versions(v1_store)] == [4, 1]
    assert open_posterior(v1_store, "latest").version == version


def test_ids_the_api_cannot_serve_are_refused_at_publish(tmp_path):
    data = build_watch_data(
        source="bad",
        rating_user_ids=np.array(["a/b"], dtype=object),
        rating_movie_ids=np.array(["x"], dtype=object),
        movie_catalog=None,
    )
    with pytest.raises(StoreError, match=r"user id 'a/b' cannot be served: it contains '/'"):
        publish_posterior(tmp_path / "store", samples=_samples(1, 1), data=data, config={})
