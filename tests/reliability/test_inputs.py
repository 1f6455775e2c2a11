"""Bad input catalogue: every malformed request gets a 4xx whose message says what was wrong."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.helpers.app_helpers import app_settings, detail_text, publish, tiny_data

TOKEN = "inputs-token-93ad"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BODY_LIMIT = 4096


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    store = tmp_path_factory.mktemp("inputs") / "store"
    publish(store, tiny_data(num_users=12, num_movies=10), seed=1)
    data_root = store.parent / "data"
    (data_root / "ml-1m").mkdir(parents=True)
    settings = app_settings(
        store,
        poll_interval_s=0,
        api_token=TOKEN,
        max_body_bytes=BODY_LIMIT,
        run_jobs=False,  # jobs are queued, never run
        data_dir=data_root,
    )
    with TestClient(create_app(settings)) as c:
        yield c


NOT_AN_ID = "not an id"
NOT_HERE = "is not in posterior version"
BAD_GETS = [
    # ids are text: anything a source could have is looked up (404 when absent); text no
    # source can have as an id is a 422 that says why
    ("/recommend/-1", 404, ["user -1 " + NOT_HERE]),
    ("/movies/-7", 404, ["movie -7 " + NOT_HERE]),
    (f"/recommend/{2**63}", 404, [f"user {2**63} " + NOT_HERE]),
    (f"/users/{2**64 + 1}", 404, [NOT_HERE]),
    (f"/movies/{10**40}", 404, [NOT_HERE]),
    (f"/recommend/{2**63 - 1}", 404, [f"user {2**63 - 1} " + NOT_HERE]),
    ("/movies/999999", 404, ["movie 999999 " + NOT_HERE]),
    ("/recommend/abc", 404, ["user abc " + NOT_HERE]),
    ("/recommend/1.5", 404, [NOT_HERE]),
    ("/recommend/١٢", 404, ["user ١٢ " + NOT_HERE]),  # Arabic-Indic digits: just text
    ("/users/１", 404, [NOT_HERE]),  # fullwidth digit
    ("/movies/😀", 404, [NOT_HERE]),
    ("/recommend/+1", 404, [NOT_HERE]),  # not user 1: ids are compared as text
    ("/recommend/01", 404, [NOT_HERE]),
    ("/recommend/%201", 422, ["path.user_id", NOT_AN_ID, "white space"]),
    ("/recommend/1%09", 422, ["path.user_id", NOT_AN_ID, "control character"]),
    ("/movies/%C2%85", 422, ["path.movie_id", NOT_AN_ID, "control character"]),  # C1 NEL
    (f"/users/{'x' * 257}", 422, ["path.user_id", "at most 256 characters"]),
    ("/recommend/", 405, ["GET is not allowed on /recommend", "use POST"]),
    # k: out of range, not a number, empty, repeated
    ("/recommend/1?k=0", 422, ["query.k", "greater than or equal to 1"]),
    ("/recommend/1?k=100001", 422, ["query.k", "less than or equal to 100000"]),
    (f"/recommend/1?k={10**30}", 422, ["query.k", "less than or equal to 100000"]),
    ("/recommend/1?k=-5", 422, ["query.k", "greater than or equal to 1"]),
    ("/recommend/1?k=ten", 422, ["query.k", "valid integer", "'ten'"]),
    ("/recommend/1?k=", 422, ["query.k", "valid integer", "''"]),
    ("/recommend/1?k=1&k=2", 422, ["query.k", "given 2 times; give it once"]),
    ("/recommend/1?k=3&k=3&k=3", 422, ["query.k", "given 3 times"]),
    ("/jobs?=214", 422, ["a query parameter has no name; write name=value"]),
    ("/explore/users?prefix=1&=2", 422, ["has no name"]),
    # genres: unknown, wrong case, empty
    ("/recommend/1?genre=Nope", 422, ["query.genre", "'Drama'", "'Nope'"]),
    ("/recommend/1?genre=drama", 422, ["query.genre", "'Drama'", "'drama'"]),
    ("/recommend/1?genre=Drama&genre=Polka", 422, ["query.genre.1", "'Polka'"]),
    ("/recommend/1?genre=", 422, ["query.genre", "''"]),
    # paging and sorting
    ("/users?limit=0", 422, ["query.limit", "greater than or equal to 1"]),
    ("/users?limit=101", 422, ["query.limit", "less than or equal to 100"]),
    ("/users?offset=", 422, ["query.offset", "valid integer"]),
    ("/users?offset=1&offset=2", 422, ["query.offset", "given 2 times"]),
    ("/users?sort=random", 422, ["query.sort", "'most_watched' or 'least_watched'"]),
    ("/users/1?offset=99999999999", 422, ["query.offset", "less than or equal to"]),
    # path escapes: only files listed in the version's manifest are served
    ("/model/files/..%2F..%2Fmanifest.json", 404, ["has no file '../../manifest.json'"]),
    ("/model/files/%2e%2e/%2e%2e/etc/passwd", 404, ["has no file"]),
    ("/model/files/%2Fetc%2Fpasswd", 404, ["has no file '/etc/passwd'"]),
    ("/model/files/manifest.json", 404, ["has no file 'manifest.json'", "GET /model"]),
    ("/model/files/plots%00/trace.png", 404, ["has no file"]),
    (f"/model/files/{'a' * 301}", 422, ["path.name", "at most 300 characters"]),
    ("/static/%2e%2e/settings.py", 404, ["no endpoint at"]),
]


@pytest.mark.parametrize(("url", "status", "phrases"), BAD_GETS, ids=[u for u, _, _ in BAD_GETS])
def test_bad_get_gets_a_4xx_that_says_why(client, url, status, phrases):
    response = client.get(url)
    assert response.status_code == status, response.text
    detail = detail_text(response.json())
    for phrase in phrases:
        assert phrase in detail, f"{phrase!r} not in {detail!r}"


def test_wrong_method_names_the_allowed_one(client):
    response = client.delete("/recommend/1")
    assert response.status_code == 405
    assert detail_text(response.json()) == "DELETE is not allowed on /recommend/1; use GET"
    assert response.headers["allow"] == "GET"


def test_oversized_body_is_refused_with_413(client):
    response = client.post("/admin/reload", headers=AUTH, content=b"x" * (BODY_LIMIT + 1))
    assert response.status_code == 413
    assert f"exceeds {BODY_LIMIT} bytes (SHARDLENS_MAX_BODY_BYTES)" in detail_text(response.json())


@pytest.mark.parametrize(
    ("header", "phrase"),
    [
        (None, "missing bearer token"),
        ("Basic dXNlcjpwYXNz", "missing bearer token"),
        ("Bearer", "missing bearer token"),
        ("Bearer wrong-token", "wrong bearer token"),
        (f"Bearer {TOKEN}x", "wrong bearer token"),
        (f"bearer  {TOKEN[:-1]}", "wrong bearer token"),
    ],
)
def test_admin_token_problems_are_401s_that_say_why(client, header, phrase):
    headers = {"Authorization": header} if header else {}
    response = client.post("/admin/reload", headers=headers)
    assert response.status_code == 401
    assert phrase in detail_text(response.json())
    assert response.headers["www-authenticate"] == "Bearer"
    assert TOKEN not in response.text


JSON = {**AUTH, "Content-Type": "application/json"}
BAD_JOBS = [
    # malformed or mistyped bodies
    ({"content": b'{"preset": "smoke"'}, 422, ["malformed JSON at character 18", "Expecting"]),
    ({"content": b"\xff\xfe{}"}, 422, ["malformed JSON"]),
    ({"content": b""}, 422, ["body: Field required"]),
    ({"content": b"null"}, 422, ["valid dictionary"]),
    ({"content": b'["smoke"]'}, 422, ["valid dictionary"]),
    (
        {"json": {"preset": "huge"}},
        422,
        ["body.preset", "'smoke', 'default', 'cpu' or 'reference'"],
    ),
    ({"json": {"presets": "smoke"}}, 422, ["body.presets", "Extra inputs are not permitted"]),
    ({"json": {"seed": -1}}, 422, ["body.seed", "greater than or equal to 0"]),
    ({"json": {"seed": "7"}}, 422, ["body.seed", "valid integer", "'7'"]),
    ({"json": {"seed": True}}, 422, ["body.seed", "valid integer"]),
    ({"json": {"num_chains": 1.5}}, 422, ["body.num_chains", "valid integer"]),
    ({"json": {"num_results": 10**20}}, 422, ["body.num_results", "less than or equal to"]),
    ({"json": {"data": "x" * 2000}}, 422, ["body.data", "at most 1024 characters"]),
    ({"json": {"data": "synthetic:users=many"}}, 422, ["users must be an integer", "'many'"]),
    ({"json": {"data": "synthetic:users=0"}}, 422, ["at least one user"]),
    ({"json": {"data": "synthetic:colour=red"}}, 422, ["bad synthetic option 'colour=red'"]),
    ({"json": {"data": ""}}, 422, ["body.data", "at least 1 character"]),
    ({"json": {"data": "   "}}, 422, ["data source is empty"]),
    # path escapes out of the data root
    ({"json": {"data": "../../etc/passwd"}}, 422, ["outside the data root"]),
    ({"json": {"data": "/etc/passwd"}}, 422, ["outside the data root"]),
    ({"json": {"data": "ml-1m/../../store/jobs.sqlite3"}}, 422, ["outside the data root"]),
    ({"json": {"data": "~/.ssh/id_rsa"}}, 422, ["outside the data root"]),
    ({"json": {"data": "nested\u0000name"}}, 422, ["is not a usable path", "null byte"]),
    ({"json": {"data": "missing.zip"}}, 422, ["does not exist under the data root"]),
    # wrong content type, oversized body
    (
        {"content": b'{"preset": "smoke"}', "headers": {"Content-Type": "text/plain"}},
        415,
        ["sent as 'text/plain'", "application/json"],
    ),
    (
        {
            "content": b"preset=smoke",
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
        415,
        ["application/x-www-form-urlencoded"],
    ),
    (
        {"content": b'{"preset": "smoke", "pad": "' + b"x" * BODY_LIMIT + b'"}'},
        413,
        [f"exceeds {BODY_LIMIT} bytes"],
    ),
]


@pytest.mark.parametrize(("request_kwargs", "status", "phrases"), BAD_JOBS)
def test_bad_job_submission_gets_a_4xx_that_says_why(client, request_kwargs, status, phrases):
    kwargs = dict(request_kwargs)
    headers = {**JSON, **kwargs.pop("headers", {})}
    response = client.post("/jobs", headers=headers, **kwargs)
    assert response.status_code == status, response.text
    detail = detail_text(response.json())
    for phrase in phrases:
        assert phrase in detail, f"{phrase!r} not in {detail!r}"
    assert client.get("/jobs", headers=AUTH).json()["total"] == 0  # nothing was queued


def test_the_data_root_itself_is_accepted(client):
    response = client.post("/jobs", headers=JSON, json={"preset": "smoke", "data": "ml-1m"})
    assert response.status_code == 202  # a named source, not the folder
    client.delete(f"/jobs/{response.json()['id']}", headers=AUTH)


def test_oversized_streamed_job_body_is_refused_with_413(client):
    def chunks():  # no Content-Length: the limit applies to what is streamed
        for _ in range(8):
            yield b" " * 1024

    response = client.post("/jobs", headers=JSON, content=chunks())
    assert response.status_code == 413
    assert "SHARDLENS_MAX_BODY_BYTES" in detail_text(response.json())


BAD_JOB_QUERIES = [
    ("/jobs?status=bogus", 422, ["query.status", "'queued'"]),
    ("/jobs?limit=0", 422, ["query.limit", "greater than or equal to 1"]),
    ("/jobs?limit=1&limit=2", 422, ["query.limit", "given 2 times"]),
    (f"/jobs?offset={2**63}", 422, ["query.offset", "less than or equal to"]),
    ("/jobs/nope", 404, ["no job has id 'nope'", "GET /jobs"]),
    ("/jobs/%2e%2e", 404, ["no job has id '..'"]),
    (f"/jobs/{'0' * 65}", 422, ["path.job_id", "at most 64 characters"]),
    ("/jobs/nope/logs?lines=0", 422, ["query.lines", "greater than or equal to 1"]),
]


@pytest.mark.parametrize(
    ("url", "status", "phrases"), BAD_JOB_QUERIES, ids=[u for u, _, _ in BAD_JOB_QUERIES]
)
def test_bad_job_query_gets_a_4xx_that_says_why(client, url, status, phrases):
    response = client.get(url, headers=AUTH)
    assert response.status_code == status, response.text
    detail = detail_text(response.json())
    for phrase in phrases:
        assert phrase in detail, f"{phrase!r} not in {detail!r}"
