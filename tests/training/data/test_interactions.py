"""Generic interaction logs (CSV, TSV, Parquet), their ids, the watch rules, and serving a
string id end to end."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from storage.posterior import open_posterior, publish_posterior
from tests.helpers.app_helpers import app_settings
from training.cli.main import main as training_main
from training.data import DataError, DataWarning, LoadOptions, load_source

INTERACTIONS = """user,item,rating,timestamp
alice,tt0111161,5,2024-01-03T10:00:00Z
alice,tt0068646,4,2024-01-04T10:00:00Z
bob,tt0111161,3.5,2024-01-02T09:00:00Z
bob,tt0468569,2,2024-01-05T09:00:00Z
carol,tt0068646,4.5,2024-01-06T12:00:00Z
carol,tt0468569,1,2024-01-06T13:00:00Z
carol,tt0111161,5,2024-01-07T08:00:00Z
alice,tt0111161,4,2024-01-08T10:00:00Z
"""
ITEMS = """item,title,genres
tt0111161,"Shawshank Redemption, The (1994)",Drama
tt0068646,"Godfather, The (1972)",Crime|Drama
tt0468569,The Dark Knight (2008),Action|Crime|Drama|Superhero
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "views.csv").write_text(INTERACTIONS)
    (tmp_path / "items.csv").write_text(ITEMS)
    return tmp_path


def _load(path, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_source(str(path), options=LoadOptions(**options))
    return data, [str(w.message) for w in caught if issubclass(w.category, DataWarning)]


def test_csv_with_string_ids_items_and_iso_times(files):
    data, warned = _load(files / "views.csv", items=str(files / "items.csv"))
    assert data.user_id_kind == "str" and data.user_ids.tolist() == ["alice", "bob", "carol"]
    assert data.movie_ids.tolist() == ["tt0111161", "tt0068646", "tt0468569"]
    assert data.titles[0] == "Shawshank Redemption, The (1994)"
    # 'Superhero' is no genre of the service: it counts as Unknown, and that is said.
    assert data.genres[2] == ("Action", "Crime", "Drama", "Unknown")
    assert any("'Superhero' (1)" in w for w in warned)
    assert data.num_watches == 7 and data.report["duplicates_removed"] == 1
    # The repeated (alice, tt0111161) keeps its latest time; ISO times are epoch seconds.
    k = np.flatnonzero((data.user_index == 0) & (data.movie_index == 0))
    assert data.timestamps[k].tolist() == [1704708000]


def test_numeric_ids_only_when_every_value_is_a_plain_integer(tmp_path):
    (tmp_path / "a.csv").write_text("user,item\n1,10\n2,20\n-3,30\n")
    data, _ = _load(tmp_path / "a.csv")
    assert data.user_id_kind == "int" and data.user_ids.tolist() == [1, 2, -3]
    (tmp_path / "b.csv").write_text("user,item\n1,010\n2,20\n")  # a leading zero: text
    data, _ = _load(tmp_path / "b.csv")
    assert data.user_id_kind == "int" and data.movie_id_kind == "str"
    assert data.movie_ids.tolist() == ["010", "20"]
    data, _ = _load(tmp_path / "b.csv", id_type="int")
    assert data.movie_ids.tolist() == [10, 20]
    data, _ = _load(tmp_path / "a.csv", id_type="str")
    assert data.user_ids.tolist() == ["1", "2", "-3"]


def test_tsv_named_columns_and_k_core(tmp_path):
    rows = ["who\twhat\tstars"]
    rows += [f"u{u}\ti{i}\t{(u + i) % 5 + 1}" for u in range(6) for i in range(u + 1)]
    (tmp_path / "log.tsv").write_text("\n".join(rows) + "\n")
    options = {"user_column": "who", "item_column": "what", "rating_column": "stars"}
    data, _ = _load(tmp_path / "log.tsv", **options, min_user_watches=3, min_item_watches=3)
    # u0..u5 watched i0..iu: the 3-core keeps users u2..u5 and items i0..i2 (+ i3 has 3).
    assert sorted(data.user_ids.tolist()) == ["u2", "u3", "u4", "u5"]
    assert sorted(data.movie_ids.tolist()) == ["i0", "i1", "i2", "i3"]
    k = data.report["k_core"]
    assert (k["removed_users"], k["removed_items"]) == (2, 2) and k["rounds"] >= 1
    assert data.watch_counts.min() >= 3 and data.movie_counts.min() >= 3


def test_windows_1252_generic_file_is_decoded_per_line(tmp_path):
    raw = "user,item\nzoë,a\n".encode() + "renée\u2019s,b\n".encode("cp1252")
    (tmp_path / "mixed.csv").write_bytes(raw)
    data, warned = _load(tmp_path / "mixed.csv")
    assert data.user_ids.tolist() == ["zoë", "renée\u2019s"]
    assert any(
        "1 line decoded as Windows-1252, first at" in w and "mixed.csv:3" in w for w in warned
    )


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        ("user,item\nalice,\n", {}, r"views\.csv, line 2: item id '' cannot be an id: it is empty"),
        ("user,item\na/b,x\n", {}, r"line 2: user id 'a/b' cannot be an id: it contains '/'"),
        ("who,item\n1,2\n", {}, r"no user column: looked for .*name it with --user-column"),
        ("user,item\n1,2\n", {"rating_column": "stars"}, r"no column 'stars' \(--rating-column\)"),
        ("user,item,rating\n1,2,good\n", {}, r"line 2: rating 'good' is not a number"),
        ("user,item,timestamp\n1,2,yesterday\n", {}, r"line 2: timestamp 'yesterday' is neither"),
        ("user,item\nx,2\n", {"id_type": "int"}, r"line 2: user id 'x' is not an integer"),
        ("user,item\n1,2\n", {"min_rating": 3}, r"--min-rating needs ratings"),
        ("user,item,rating\n1,2,1\n", {"min_rating": 3}, r"no rating is >= 3 \(--min-rating\)"),
        ("user,item\n", {}, r"views\.csv: the file has no rows"),
    ],
)  # fmt: skip
def test_generic_bad_input(tmp_path, text, options, message):
    (tmp_path / "views.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        load_source(str(tmp_path / "views.csv"), options=LoadOptions(**options))


def test_items_file_errors(files):
    (files / "dup.csv").write_text("item,title\ntt0111161,A\ntt0111161,B\n")
    with pytest.raises(DataError, match=r"dup\.csv, line 3: item 'tt0111161' is listed twice"):
        load_source(str(files / "views.csv"), options=LoadOptions(items=str(files / "dup.csv")))
    with pytest.raises(DataError, match=r"only apply to an interactions file"):
        load_source("synthetic", options=LoadOptions(items=str(files / "items.csv")))


def test_parquet_reads_like_csv(files):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    table = pa.table(
        {
            "user_id": ["alice", "bob", "bob", "carol"],
            "movie_id": ["tt1", "tt1", "tt2", "tt2"],
            "rating": [4.0, 5.0, 3.0, 1.0],
            "ts": [1, 2, 3, 4],
        }
    )
    pq.write_table(table, files / "views.parquet")
    data, _ = _load(files / "views.parquet", timestamp_column="ts", min_rating=2.0)
    assert data.user_ids.tolist() == ["alice", "bob"] and data.num_watches == 3
    assert data.timestamps.tolist() == [1, 2, 3]
    table = pa.table({"user": [1, 2], "item": [7, 8]})  # integer columns stay numbers
    pq.write_table(table, files / "ints.parquet")
    data, _ = _load(files / "ints.parquet")
    assert data.user_id_kind == "int" and data.movie_ids.tolist() == [7, 8]
    pq.write_table(pa.table({"user": ["a", None], "item": ["x", "y"]}), files / "null.parquet")
    with pytest.raises(DataError, match=r"null\.parquet, row 2: user id '' cannot be an id"):
        load_source(str(files / "null.parquet"))


def test_parquet_without_pyarrow_says_how_to_install(files, monkeypatch):
    (files / "x.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(DataError, match=r"pip install -e '\.\[parquet\]'"):
        load_source(str(files / "x.parquet"))


def _samples(n, m, *, draws=4, chains=2, dim=2, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "user_embeddings": rng.normal(size=(draws, chains, n, dim)).astype(np.float32),
        "user_bias": rng.normal(size=(draws, chains, n)).astype(np.float32),
        "movie_embeddings": rng.normal(size=(draws, chains, m, dim)).astype(np.float32),
        "movie_bias": rng.normal(size=(draws, chains, m)).astype(np.float32),
    }


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_string_ids_are_served_end_to_end(files, kind):
    source = files / "views.csv"
    if kind == "parquet":
        pd = pytest.importorskip("pandas")
        pytest.importorskip("pyarrow")
        pd.read_csv(source).to_parquet(files / "views.parquet")
        source = files / "views.parquet"
    data = load_source(str(source), options=LoadOptions(items=str(files / "items.csv")))
    store = files / "store"
    publish_posterior(
        store, samples=_samples(data.num_users, data.num_movies), data=data, config={}
    )
    post = open_posterior(store)
    assert post.manifest["format_version"] == 2
    assert post.id_kinds == {"users": "str", "movies": "str"}
    with TestClient(create_app(app_settings(store, poll_interval_s=0))) as client:
        body = client.get("/recommend/bob", params={"k": 3}).json()
        assert body["user_id"] == "bob" and body["watched_count"] == 2
        picked = [r["movie_id"] for r in body["recommendations"]]
        assert picked == ["tt0068646"]  # the one movie bob has not watched
        assert body["recommendations"][0]["title"] == "Godfather, The (1972)"
        users = client.get("/users", params={"limit": 3}).json()["users"]
        assert {u["user_id"] for u in users} == {"alice", "bob", "carol"}
        movie = client.get("/movies/tt0468569").json()
        assert movie["movie_id"] == "tt0468569" and movie["watch_count"] == 2
        assert client.get("/recommend/dave").status_code == 404


def test_cli_accepts_the_interactions_flags(files, capsys):
    argv = ["data", str(files / "views.csv"), "--items", str(files / "items.csv"), "--json"]
    assert training_main([*argv, "--min-rating", "4"]) == 0
    out = capsys.readouterr()
    assert '"users": "str"' in out.out and "'Superhero' (1)" in out.err
    assert training_main([*argv, "--user-column", "nobody"]) == 2
    assert "no column 'nobody' (--user-column)" in capsys.readouterr().err


def test_repeated_pairs_keep_their_latest_watch():
    from training.data.watch import build_watch_data

    rng = np.random.default_rng(3)
    users, items, times = rng.integers(0, 5, 300), rng.integers(0, 7, 300), rng.integers(0, 9, 300)
    data = build_watch_data(
        source="repeats", rating_user_ids=users, rating_movie_ids=items,
        movie_catalog=None, rating_timestamps=times,
    )  # fmt: skip
    latest: dict[tuple[int, int], int] = {}
    for u, i, t in zip(users.tolist(), items.tolist(), times.tolist(), strict=True):
        latest[(u, i)] = max(t, latest.get((u, i), t))
    got = {
        (int(data.user_ids[a]), int(data.movie_ids[b])): int(t)
        for a, b, t in zip(data.user_index, data.movie_index, data.timestamps, strict=True)
    }
    assert got == latest
    order = data.user_index.astype(np.int64) * data.num_movies + data.movie_index
    assert (np.diff(order) > 0).all()  # sorted by user, then movie, no repeats
