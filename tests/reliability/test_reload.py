"""Failing reloads: a corrupt new version is refused, logged and shown in GET /model, and the
old version keeps serving (on a live server with forced reloads, and in-process by polling)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.helpers.app_helpers import app_settings, publish, tiny_data
from tests.helpers.live_server import live_server

TOKEN = "reload-token-71be"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def flip_tail(path: Path) -> None:
    """Same size, different bytes: only the checksum can tell."""
    raw = bytearray(path.read_bytes())
    raw[-4:] = bytes(b ^ 0xFF for b in raw[-4:])
    path.write_bytes(bytes(raw))


def truncate_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def drop(path: Path) -> None:
    path.unlink()


# (file to damage, how, a phrase the refusal must contain)
DAMAGE: list[tuple[str, Callable[[Path], None], str]] = [
    ("movie_embeddings.npy", flip_tail, "movie_embeddings.npy"),
    ("users.npy", truncate_half, "users.npy"),
    ("movie_bias.npy", drop, "movie_bias.npy"),
    ("manifest.json", truncate_half, "manifest.json"),
    ("movies.json", flip_tail, "movies.json"),
]


@pytest.mark.slow
def test_corrupt_versions_are_refused_and_the_old_one_keeps_serving(tmp_path):
    store = tmp_path / "store"
    data = tiny_data(num_users=16, num_movies=12)
    good = publish(store, data, seed=1).version
    user = int(data.user_ids[0])
    env = {"SHARDLENS_API_TOKEN": TOKEN, "SHARDLENS_POLL_INTERVAL_S": "0"}
    broken_versions = []
    with (
        live_server(store, cache_dir=tmp_path / "cache", env=env) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as client,
    ):
        for seed, (name, damage, phrase) in enumerate(DAMAGE, start=2):
            broken = publish(store, data, seed=seed).version
            damage(store / "versions" / broken / name)
            broken_versions.append(broken)
            outcome = client.post("/admin/reload", headers=AUTH).json()
            assert outcome["model_version"] == good and not outcome["changed"], outcome
            assert broken in outcome["error"] and phrase in outcome["error"], outcome
            model = client.get("/model").json()
            assert model["model_version"] == good
            assert model["last_load_error"]["version"] == broken
            assert phrase in model["last_load_error"]["message"]
            assert client.get("/readyz").json()["model_version"] == good
            answer = client.get(f"/recommend/{user}")
            assert answer.status_code == 200 and answer.json()["model_version"] == good
        fixed = publish(store, data, seed=99).version
        outcome = client.post("/admin/reload", headers=AUTH).json()
        assert outcome == {"model_version": fixed, "changed": True, "error": None}
    log = server.process.stdout.read().decode()
    assert server.process.returncode == 0, log
    lines = log.splitlines()
    for broken in broken_versions:  # each refusal is logged, naming what still serves
        assert any(
            line.startswith("ERROR") and broken in line and f"still serving {good}" in line
            for line in lines
        ), log
    assert TOKEN not in log


def test_polling_refuses_a_corrupt_version_once_and_logs_it(tmp_path, caplog):
    """The poller meets the broken version on its own: refused, logged once (not on every
    poll), shown in GET /model, and the next good version is picked up."""
    store = tmp_path / "store"
    data = tiny_data(num_users=10, num_movies=8)
    good = publish(store, data, seed=1).version
    settings = app_settings(store, poll_interval_s=0.02, run_jobs=False)
    with caplog.at_level("ERROR", logger="shardlens"), TestClient(create_app(settings)) as client:
        staged = publish(tmp_path / "staging", data, seed=2).version  # break it before it
        truncate_half(tmp_path / "staging" / "versions" / staged / "users.npy")  # is visible
        (tmp_path / "staging" / "versions" / staged).rename(store / "versions" / staged)
        (store / "latest").write_text(staged + "\n")
        deadline = time.monotonic() + 10
        while client.get("/model").json()["last_load_error"] is None:
            assert time.monotonic() < deadline, "the poller never tried the broken version"
            time.sleep(0.02)
        time.sleep(0.3)  # about 15 more polls
        model = client.get("/model").json()
        assert model["model_version"] == good
        assert model["last_load_error"]["version"] == staged
        refusals = [r for r in caplog.records if staged in r.getMessage()]
        assert len(refusals) == 1 and refusals[0].levelname == "ERROR"
        fixed = publish(store, data, seed=3).version
        deadline = time.monotonic() + 10
        while client.get("/readyz").json()["model_version"] != fixed:
            assert time.monotonic() < deadline, "the poller did not move on to a good version"
            time.sleep(0.02)
