"""POST /jobs takes the data flags of `python -m training train` and hands them on."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.jobs.command import training_command
from app.main import create_app
from app.settings import Settings
from training.cli.data_flags import options_from_args
from training.cli.main import build_parser

TOKEN = "flags-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(tmp_path):
    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True)
    (data / "logs" / "views.csv").write_text("user,item\na,b\n")
    (data / "logs" / "items.csv").write_text("item,title\nb,B\n")
    settings = Settings(
        store_dir=tmp_path / "store", data_dir=data, cache_dir=tmp_path / "cache",
        poll_interval_s=0, api_token=TOKEN, run_jobs=False,
    )  # fmt: skip
    with TestClient(create_app(settings)) as c:
        yield c


def test_data_flags_reach_the_training_command(client, tmp_path):
    body = {
        "preset": "smoke", "data": "logs/views.csv", "items": "logs/items.csv",
        "min_rating": 4, "min_user_watches": 5, "min_item_watches": 2,
        "user_column": "who", "item_column": "what", "rating_column": "stars",
        "timestamp_column": "when", "id_type": "str",
    }  # fmt: skip
    response = client.post("/jobs", json=body, headers=AUTH)
    assert response.status_code == 202, response.text
    config = response.json()["config"]
    root = (tmp_path / "data").resolve()
    assert config["data"] == str(root / "logs/views.csv")
    assert config["items"] == str(root / "logs/items.csv")
    argv = training_command(config, job_id="j1", store_dir="s", db_path="d")
    # The command the runner starts parses with the training CLI, flags intact.
    args = build_parser().parse_args(argv[3:])
    options = options_from_args(args)
    assert (options.items, options.min_rating, options.id_type) == (
        str(root / "logs/items.csv"), 4.0, "str",
    )  # fmt: skip
    assert (options.min_user_watches, options.min_item_watches) == (5, 2)
    assert (options.user_column, options.item_column) == ("who", "what")
    assert (options.rating_column, options.timestamp_column) == ("stars", "when")


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        ({"data": "logs/views.csv", "items": "../../etc/passwd"}, "items", "outside the data root"),
        ({"data": "logs/views.csv", "items": "logs/none.csv"}, "items", "does not exist"),
        ({"data": "logs/views.csv", "min_user_watches": 0}, "min_user_watches", "greater than"),
        ({"data": "logs/views.csv", "id_type": "float"}, "id_type", "'auto'"),
        ({"data": "ml-25m", "min_rating": "4"}, "min_rating", "valid number"),
    ],
)
def test_bad_data_flags_are_422(client, body, field, needle):
    response = client.post("/jobs", json={"preset": "smoke", **body}, headers=AUTH)
    assert response.status_code == 422, response.text
    assert field in response.text and needle in response.text


def test_named_releases_are_accepted(client):
    for name in ("ml-10m", "ml-25m", "ml-32m", "ml-latest-small"):
        response = client.post("/jobs", json={"preset": "smoke", "data": name}, headers=AUTH)
        assert response.status_code == 202 and response.json()["config"]["data"] == name
