"""The data layer: every source, and every bad-input case, gives WatchData or a clear error."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from tests.helpers.movielens_files import (
    ML1M_RATINGS,
    ml1m_texts,
    write_ml1m,
    write_ml1m_zip,
    write_ml100k,
)
from training.cli.main import main as training_main
from training.data import DataError, SyntheticSpec, generate, load_source, parse_synthetic


def test_ml1m_folder_factorizes_like_the_reference(ml1m_dir):
    data = load_source(str(ml1m_dir))
    # Factorized order: order of first appearance in ratings.dat (user 6 comes first).
    assert data.user_ids.tolist() == [6, 1, 2, 3]
    assert data.movie_ids.tolist() == [50, 1, 10, 73, 21, 2]
    # Movie 99 has no rating, so it is not a column.
    assert 99 not in data.movie_ids
    assert data.num_watches == len(ML1M_RATINGS) - 1  # the repeated pair counts once
    w = data.dense()
    assert w.shape == (4, 6) and w.dtype == bool
    for user, movie, _, _ in ML1M_RATINGS:
        i = data.user_ids.tolist().index(user)
        j = data.movie_ids.tolist().index(movie)
        assert w[i, j]
    assert data.watch_counts.tolist() == [2, 3, 3, 1]
    toy = data.movie_ids.tolist().index(1)
    assert data.titles[toy] == "Toy Story (1995)"
    assert data.genres[toy] == ("Animation", "Children", "Comedy")
    assert data.first_genre[toy] == "Animation"
    mis = data.movie_ids.tolist().index(73)
    assert data.titles[mis] == "Misérables, Les (1995)"  # decoded as ISO-8859-1
    # The repeated pair keeps its latest timestamp.
    k = np.flatnonzero((data.user_index == 0) & (data.movie_index == 1))
    assert data.timestamps[k].tolist() == [978300999]


def test_ml1m_zip_equals_folder(tmp_path, ml1m_dir):
    zipped = load_source(str(write_ml1m_zip(tmp_path / "ml-1m.zip")))
    folder = load_source(str(ml1m_dir))
    assert zipped.fingerprint() == folder.fingerprint()
    assert zipped.titles == folder.titles and zipped.genres == folder.genres


def test_named_source_is_looked_up_in_data_root(tmp_path):
    write_ml1m_zip(tmp_path / "ml-1m.zip")
    assert load_source("ml-1m", data_root=tmp_path).num_users == 4
    with pytest.raises(DataError, match=r"ml-100k\.zip"):
        load_source("ml-100k", data_root=tmp_path)


def test_ml100k_folder(ml100k_dir):
    data = load_source(str(ml100k_dir))
    assert data.user_ids.tolist() == [196, 186, 22, 244]
    assert data.movie_ids.tolist() == [3, 1, 2, 4, 5]
    toy = data.movie_ids.tolist().index(1)
    assert data.genres[toy] == ("Animation", "Children", "Comedy")
    mystery = data.movie_ids.tolist().index(5)
    assert data.genres[mystery] == ("Unknown",)
    assert data.num_watches == 7 and data.dense().sum() == 7


def test_synthetic_is_seeded_and_returns_truth():
    spec = SyntheticSpec(num_users=300, num_movies=120, latent_dim=3, seed=7)
    a, b = generate(spec), generate(spec)
    assert a.fingerprint() == b.fingerprint()
    assert (
        generate(SyntheticSpec(num_users=300, num_movies=120, seed=8)).fingerprint()
        != a.fingerprint()
    )
    assert a.truth is not None
    assert a.truth.user_embeddings.shape == (300, 3)
    assert a.truth.movie_embeddings.shape == (120, 3)
    # MovieLens-like: a few percent dense, every user and movie has a watch.
    assert 0.01 < a.density < 0.15
    assert (a.watch_counts > 0).all() and (a.movie_counts > 0).all()
    # Skewed popularity: the most popular movie is watched far more than the median one.
    assert a.movie_counts.max() > 4 * np.median(a.movie_counts)
    # The truth is aligned with the matrix's rows and columns: watched pairs have higher
    # true probability than unwatched ones.
    p = a.truth.probabilities()
    w = a.dense()
    assert p[w].mean() > 3 * p[~w].mean()


def test_synthetic_options_parse():
    spec = parse_synthetic("synthetic:users=50,movies=20,dim=2,seed=3")
    assert (spec.num_users, spec.num_movies, spec.latent_dim, spec.seed) == (50, 20, 2, 3)
    data = load_source("synthetic:users=50,movies=20,seed=3")
    assert data.num_users == 50 and data.num_movies <= 20
    for bad in ("synthetic:users=x", "synthetic:colour=3", "synthetic:users"):
        with pytest.raises(DataError):
            parse_synthetic(bad)


# ---- bad input: every case names the file and, where there is one, the line -------------


def _ratings(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode("ascii")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ratings.dat": None}, r"ratings\.dat: file not found"),
        ({"movies.dat": None}, r"movies\.dat: file not found"),
        (
            {"ratings.dat": _ratings("1::1::5::978824291", "1::10::3")},
            r"ratings\.dat, line 2: malformed line",
        ),
        (
            {"ratings.dat": _ratings("1::1::5::978824291", "1::ten::3::9")},
            r"line 2: malformed line: MovieID 'ten'",
        ),
        (
            {"ratings.dat": _ratings("1::1::5::978824291", "1::4242::3::9")},
            r"ratings\.dat, line 2: unknown movie id 4242",
        ),
        ({"movies.dat": b"1::Toy Story (1995)\n"}, r"movies\.dat, line 1: malformed line"),
        ({"ratings.dat": "1::1::5::978824291\n".encode("utf-16")}, r"ratings\.dat: wrong encoding"),
        ({"movies.dat": "1::Toy::Comedy\n".encode("utf-16")}, r"movies\.dat: wrong encoding"),
        (
            {"ratings.dat": b"1::1::5::978824291\n1::1::5::97\xe9\n"},
            r"ratings\.dat, line 2: wrong encoding",
        ),
        ({"ratings.dat": b""}, r"ratings\.dat: the ratings file is empty"),
        ({"ratings.dat": b"\n\n"}, r"ratings\.dat: the ratings file is empty"),
        ({"users.dat": b"1::F::1::10::48067\n"}, r"users\.dat: ratings\.dat rates 3 user id"),
    ],
)
def test_ml1m_bad_input(tmp_path, overrides, message):
    folder = write_ml1m(tmp_path / "ml-1m", **overrides)
    with pytest.raises(DataError, match=message):
        load_source(str(folder))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"u.data": None}, r"u\.data: file not found"),
        ({"u.data": b"196\t3\t3\n"}, r"u\.data, line 1: malformed line"),
        ({"u.data": b"196\t77\t3\t881250949\n"}, r"u\.data, line 1: unknown movie id 77"),
        (
            {"u.item": b"1|Toy Story (1995)|01-Jan-1995||http://x/|0|1\n"},
            r"u\.item, line 1: malformed line",
        ),
    ],
)
def test_ml100k_bad_input(tmp_path, overrides, message):
    folder = write_ml100k(tmp_path / "ml-100k", **overrides)
    with pytest.raises(DataError, match=message):
        load_source(str(folder))


def test_zip_without_expected_folder(tmp_path):
    path = tmp_path / "wrong.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("something/else.txt", "hello")
    with pytest.raises(
        DataError, match=r"wrong\.zip: the zip holds no ml-1m or ml-10m .*something/else\.txt"
    ):
        load_source(str(path))


def test_zip_with_missing_member_names_it(tmp_path):
    path = tmp_path / "ml-1m.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ml-1m/ratings.dat", ml1m_texts()["ratings.dat"])
    with pytest.raises(DataError, match=r"ml-1m\.zip:ml-1m/movies\.dat: file not found"):
        load_source(str(path))


def test_missing_path_and_non_dataset(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_source(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="the folder holds no ml-1m or ml-10m"):
        load_source(str(tmp_path / "empty"))
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="not a zip archive"):
        load_source(str(tmp_path / "notes.txt"))
    with pytest.raises(DataError, match="empty data source"):
        load_source("  ")


# ---- the command line -----------------------------------------------------------------------


def test_cli_data_json(capsys, ml1m_dir):
    assert training_main(["data", str(ml1m_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["users"] == 4 and summary["movies"] == 6 and summary["watches"] == 9
    assert summary["density"] == pytest.approx(9 / 24, abs=1e-6)
    assert summary["heaviest_watchers"][0]["watched"] == 3


def test_cli_data_text_and_errors(capsys, tmp_path):
    assert training_main(["data", "synthetic:users=40,movies=30,seed=1"]) == 0
    out = capsys.readouterr().out
    assert "users     40" in out and "density" in out
    assert training_main(["data", str(tmp_path / "missing")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
