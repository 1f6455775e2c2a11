"""Every MovieLens release in its exact format, line-by-line decoding, and strict ids."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from tests.helpers.movielens_files import (
    CSV_RATINGS,
    ML10M_RATINGS,
    csv_texts,
    ml1m_texts,
    write_csv_release,
    write_csv_release_zip,
    write_ml1m,
    write_ml10m_zip,
)
from training.cli.main import main as training_main
from training.data import DataError, DataWarning, LoadOptions, load_source


def _load(source, **kwargs):
    """Load, returning the data and the DataWarning messages raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_source(str(source), **kwargs)
    return data, [str(w.message) for w in caught if issubclass(w.category, DataWarning)]


def test_ml10m_zip_half_stars_utf8_and_new_genres(tmp_path):
    data, warned = _load(write_ml10m_zip(tmp_path / "ml-10m.zip"))
    assert warned == []  # UTF-8 is what ml-10m is
    assert data.source.startswith("ml-10m:") and data.report["release"] == "ml-10m"
    assert data.num_watches == len(ML10M_RATINGS)  # every rating is a watch, halves included
    by_id = dict(zip(data.movie_ids.tolist(), range(data.num_movies), strict=True))
    assert data.titles[by_id[8600]].startswith("Amélie (Fabuleux destin d'Amélie")
    assert data.genres[by_id[1]] == ("Adventure", "Animation", "Children", "Comedy", "Fantasy")
    assert data.genres[by_id[64999]] == ("Documentary", "IMAX")
    assert data.genres[by_id[65000]] == ("(no genres listed)",)
    # Ratings decide what a watch is only with --min-rating (halves compare as numbers).
    strict = load_source(str(tmp_path / "ml-10m.zip"), options=LoadOptions(min_rating=3.5))
    assert strict.num_watches == sum(r >= 3.5 for _, _, r, _ in ML10M_RATINGS)
    assert strict.report["min_rating"] == {"threshold": 3.5, "removed_rows": 2}


def test_named_releases_are_found_by_zip_or_folder(tmp_path):
    write_ml10m_zip(tmp_path / "ml-10m.zip")
    assert load_source("ml-10m", data_root=tmp_path).report["release"] == "ml-10m"
    write_csv_release(tmp_path / "ml-latest-small")
    small = load_source("ml-latest-small", data_root=tmp_path)
    assert small.source.startswith("ml-latest-small:")
    with pytest.raises(DataError, match=r"ml-32m\.zip"):
        load_source("ml-32m", data_root=tmp_path)


def test_csv_release_quoted_titles_genres_and_ids(tmp_path):
    data, warned = _load(write_csv_release_zip(tmp_path / "ml-25m.zip"))
    assert warned == []
    assert data.source.startswith("ml-25m:") and data.user_ids.tolist() == [1, 2, 3]
    assert data.movie_ids.tolist() == [296, 11, 4973, 1, 72998, 209171]
    assert data.titles[1] == "American President, The (1995)"  # quoted, with a comma
    assert data.titles[2] == "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)"
    assert data.genres[4] == ("Action", "Adventure", "Sci-Fi", "IMAX")
    assert data.genres[5] == ("(no genres listed)",)
    assert data.first_genre[5] == "(no genres listed)"
    assert data.num_watches == len(CSV_RATINGS)
    assert data.timestamps.tolist()[0] == 1147880044


def test_a_bom_and_crlf_line_ends_read_the_same(tmp_path):
    plain = load_source(str(write_csv_release_zip(tmp_path / "a.zip")))
    odd = load_source(str(write_csv_release_zip(tmp_path / "b.zip", bom=True, crlf=True)))
    assert odd.fingerprint() == plain.fingerprint()
    assert odd.titles == plain.titles and odd.genres == plain.genres


# ---- decoding, line by line -------------------------------------------------------------


def _ml1m_with_movies(tmp_path, movies: bytes):
    return write_ml1m(tmp_path / "ml-1m", **{"movies.dat": movies})


def test_a_utf8_line_in_a_latin1_file_is_decoded_once(tmp_path):
    texts = ml1m_texts()
    edited = texts["movies.dat"] + "100::Amélie (2001)::Comedy|Romance\n".encode()
    ratings = texts["ratings.dat"] + b"3::100::4::978300000\n"
    folder = write_ml1m(tmp_path / "ml-1m", **{"movies.dat": edited, "ratings.dat": ratings})
    data, warned = _load(folder)
    assert "Misérables, Les (1995)" in data.titles  # the ISO-8859-1 lines
    assert "Amélie (2001)" in data.titles  # the UTF-8 line, decoded once (not 'AmÃ©lie')
    where = tmp_path / "ml-1m" / "movies.dat"
    assert warned == [f"{where} is not all ISO-8859-1: 1 line decoded as UTF-8, first at {where}:8"]


def test_windows_1252_punctuation_is_read_as_such_and_reported(tmp_path):
    text = (
        "1::Toy Story \u2013 The \u201cBest\u201d (1995)::Animation\n10::GoldenEye (1995)::Action\n"
    )
    rows = b"1::1::5::978824291\n1::10::3::978302109\n"
    folder = write_ml1m(
        tmp_path / "ml-1m",
        **{"movies.dat": text.encode("cp1252"), "ratings.dat": rows, "users.dat": None},
    )
    data, warned = _load(folder)
    assert data.titles[0] == "Toy Story \u2013 The \u201cBest\u201d (1995)"  # no C1 controls
    assert len(warned) == 1
    assert "1 line decoded as Windows-1252, first at" in warned[0] and "movies.dat:1" in warned[0]


def test_a_real_control_character_in_a_title_is_a_warning_naming_the_line(tmp_path):
    # 0x81 is undefined in Windows-1252: the line falls back to ISO-8859-1, giving U+0081.
    movies = b"1::Toy Story (1995)::Animation\n10::Golden\x81Eye (1995)::Action\n"
    folder = write_ml1m(
        tmp_path / "ml-1m",
        **{"movies.dat": movies, "ratings.dat": b"1::10::3::978302109\n", "users.dat": None},
    )
    data, warned = _load(folder)
    assert data.titles == ("Golden\x81Eye (1995)",)
    assert any("1 title contains a control character" in w and "movies.dat:2" in w for w in warned)


def test_a_double_encoded_line_is_reported_not_silently_kept(tmp_path):
    movies = ml1m_texts()["movies.dat"].decode("latin-1")
    movies = movies.replace("Misérables", "Mis\u00c3\u00a9rables").encode("utf-8")
    data, warned = _load(_ml1m_with_movies(tmp_path, movies))
    assert "MisÃ©rables, Les (1995)" in data.titles  # kept as it is, but said
    assert any("1 line looks double-encoded" in w and "movies.dat:6" in w for w in warned)


# ---- strict ids and bad input -------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratings", "message"),
    [
        (b"1::1::5::978824291\n9223372036854775808::1::5::1\n",
         r"ratings\.dat, line 2: malformed line: UserID '9223372036854775808' is not an integer"),
        (b"1::1::5::978824291\n1::123456789012345678901::5::1\n",
         r"ratings\.dat, line 2: malformed line: MovieID '123456789012345678901' is not an integer"),
        (b"1::1::5::978824291\n1::1e3::5::1\n", r"line 2: malformed line: MovieID '1e3'"),
        (b"1::1::5::978824291\n1.0::1::5::1\n", r"line 2: malformed line: UserID '1\.0'"),
        (b"1::1::5::978824291\n+1::1::5::1\n", r"line 2: malformed line: UserID '\+1'"),
        (b"1::1::5::978824291\n1::1::five::1\n", r"line 2: malformed line: Rating 'five' is not a number"),
        (b"1::1::5::978824291\n1::1::5\n", r"line 2: malformed line: expected 4 fields"),
    ],
)  # fmt: skip
def test_grouplens_ids_must_be_decimal_int64(tmp_path, ratings, message):
    folder = write_ml1m(tmp_path / "ml-1m", **{"ratings.dat": ratings, "users.dat": None})
    with pytest.raises(DataError, match=message):
        load_source(str(folder))


def test_negative_grouplens_ids_are_ids(tmp_path):
    folder = write_ml1m(
        tmp_path / "ml-1m", **{"ratings.dat": b"-5::1::5::978824291\n", "users.dat": None}
    )
    assert load_source(str(folder)).user_ids.tolist() == [-5]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ratings.csv": b"user,movie,rating,timestamp\n1,1,4.0,1\n"},
         r"ratings\.csv, line 1: malformed header: expected userId,movieId,rating,timestamp"),
        ({"ratings.csv": b"userId,movieId,rating,timestamp\n1,296,5.0,1\n1,777,3.0,2\n"},
         r"ratings\.csv, line 3: unknown movie id 777"),
        ({"movies.csv": b"movieId,title,genres\n1,American President, The (1995),Comedy\n"},
         r"movies\.csv, line 2: malformed line: expected 3 fields.*quote titles"),
        ({"movies.csv": b"movieId,title,genres\n99999999999999999999,X (1995),Comedy\n"},
         r"movies\.csv, line 2: malformed line: movieId '99999999999999999999' is not an integer"),
        ({"ratings.csv": b"userId,movieId,rating,timestamp\n"},
         r"ratings\.csv: the ratings file is empty"),
    ],
)  # fmt: skip
def test_csv_release_bad_input(tmp_path, overrides, message):
    folder = write_csv_release(tmp_path / "ml-latest-small", **overrides)
    with pytest.raises(DataError, match=message):
        load_source(str(folder))


def test_cli_exit_2_names_file_line_and_value(tmp_path, capsys):
    folder = write_ml1m(
        tmp_path / "ml-1m",
        **{"ratings.dat": b"1::1::5::1\n99999999999999999999::1::5::1\n", "users.dat": None},
    )
    assert training_main(["data", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "ratings.dat, line 2" in err and "'99999999999999999999'" in err
    assert "Traceback" not in err


def test_cli_summary_reports_what_each_rule_removed(tmp_path, capsys):
    path = write_csv_release_zip(tmp_path / "ml-25m.zip")
    argv = ["data", str(path), "--json", "--min-rating", "3", "--min-user-watches", "2"]
    assert training_main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    filters = summary["filters"]
    assert filters["rows"] == len(CSV_RATINGS)
    assert filters["min_rating"] == {"threshold": 3.0, "removed_rows": 2}  # 0.5 and 1.0
    # Left after min-rating: users 1 and 3 have 2 watches, user 2 has 1 -> user 2 goes.
    assert filters["k_core"]["removed_users"] == 1 and summary["users"] == 2
    assert summary["ids"] == {"users": "int", "movies": "int"}
    assert summary["heaviest_watchers"][0]["user_id"] == "1"
    assert training_main(["data", str(path), "--min-rating", "3", "--min-user-watches", "2"]) == 0
    assert "--min-rating 3 removed 2 rows" in capsys.readouterr().out


def test_the_csv_parser_agrees_with_a_line_by_line_read(tmp_path):
    """The fast path (regex check + pandas) gives exactly the rows the format says."""
    rng = np.random.default_rng(0)
    rows = [(int(u), int(m), float(r) / 2, int(t)) for u, m, r, t in zip(
        rng.integers(-5, 50, 300), rng.choice([1, 11, 296, 4973], 300),
        rng.integers(1, 11, 300), rng.integers(0, 2**40, 300), strict=True)]  # fmt: skip
    text = "userId,movieId,rating,timestamp\n" + "".join(
        f"{u},{m},{r},{t}\n" for u, m, r, t in rows
    )
    folder = write_csv_release(tmp_path / "ml-latest", **{"ratings.csv": text.encode()})
    data = load_source(str(folder))
    expected = {(u, m) for u, m, _, _ in rows}
    got = {(int(data.user_ids[i]), int(data.movie_ids[j]))
           for i, j in zip(data.user_index, data.movie_index, strict=True)}  # fmt: skip
    assert got == expected and data.num_watches == len(expected)
    assert csv_texts()  # the writer itself is exercised above
