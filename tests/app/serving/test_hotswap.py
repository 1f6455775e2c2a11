"""Hot-swap: new versions are swapped in under load; broken ones never replace a good one."""

from __future__ import annotations

import threading
import time

import numpy as np
from fastapi.testclient import TestClient

from app.main import create_app
from app.serving.model_state import ModelHolder
from storage.posterior import list_versions, publish_posterior
from tests.helpers.app_helpers import app_settings, publish, random_samples, tiny_data

TOKEN = "swap-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def wait_for_version(client: TestClient, version: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").json().get("model_version") == version:
            return
        time.sleep(0.02)
    raise AssertionError(f"the server did not swap to {version} within {timeout} s")


def test_swap_under_concurrent_requests(tmp_path):
    data = tiny_data(num_users=30, num_movies=24)
    user_ids = [int(u) for u in data.user_ids[:8]]
    first = publish(tmp_path, data, seed=1).version
    settings = app_settings(tmp_path, poll_interval_s=0.05, api_token=TOKEN)
    with TestClient(create_app(settings)) as client:
        stop = threading.Event()
        seen: list[tuple[int, str | None]] = []
        lock = threading.Lock()

        def hammer(worker: int) -> None:
            n = 0
            while not stop.is_set():
                params = [("genre", data.first_genre[0])] if n % 5 == 0 else []
                response = client.get(f"/recommend/{user_ids[(worker + n) % 8]}", params=params)
                with lock:
                    seen.append((response.status_code, response.json().get("model_version")))
                n += 1

        threads = [threading.Thread(target=hammer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.2)
            second = publish(tmp_path, data, seed=2).version  # found by polling
            wait_for_version(client, second)
            time.sleep(0.2)
            third = publish(tmp_path, data, seed=3).version  # loaded by an explicit reload
            reloaded = client.post("/admin/reload", headers=AUTH).json()
            assert reloaded["model_version"] == third and reloaded["error"] is None
            time.sleep(0.2)
        finally:
            stop.set()
            for t in threads:
                t.join()
        statuses = {status for status, _ in seen}
        versions = {version for _, version in seen}
        assert statuses == {200}, f"failures during the swap: {statuses}"
        assert versions <= {first, second, third}
        assert {first, third} <= versions and len(seen) > 20
        for user_id in user_ids:
            assert client.get(f"/recommend/{user_id}").json()["model_version"] == third
    pins = {v.version: v.pins for v in list_versions(tmp_path)}
    assert pins[third] == 0  # the server released its pin on shutdown


def test_in_flight_reference_survives_the_swap_and_pins_follow(tmp_path):
    data = tiny_data(num_users=12, num_movies=10)
    first = publish(tmp_path, data, seed=1).version
    holder = ModelHolder(tmp_path)
    assert holder.refresh().changed
    old = holder.current  # what an in-flight request holds
    second = publish(tmp_path, data, seed=2).version
    assert holder.refresh().served_version == second
    assert old.name == first and holder.current.name == second
    emb, _ = old.version.user_samples(0)  # still readable after the swap
    assert np.isfinite(old.version.movie_embeddings[:, old.picks[0]]).all() and emb.shape[0] == 12
    pins = {v.version: v.pins for v in list_versions(tmp_path)}
    assert pins == {first: 0, second: 1}
    holder.stop()
    assert {v.version: v.pins for v in list_versions(tmp_path)}[second] == 0


def corrupt(store, version: str) -> None:
    path = store / "versions" / version / "movie_embeddings.npy"
    raw = bytearray(path.read_bytes())
    raw[-8:] = bytes(8 * [0xAB])  # same size: only the checksum can tell
    path.write_bytes(bytes(raw))


def test_failed_load_keeps_the_old_version(tmp_path):
    data = tiny_data(num_users=20, num_movies=16)
    good = publish(tmp_path, data, seed=1).version
    settings = app_settings(tmp_path, poll_interval_s=0, api_token=TOKEN)
    with TestClient(create_app(settings)) as client:
        broken = publish(tmp_path, data, seed=2).version
        corrupt(tmp_path, broken)
        outcome = client.post("/admin/reload", headers=AUTH).json()
        assert outcome["model_version"] == good and not outcome["changed"]
        assert broken in outcome["error"]
        model = client.get("/model").json()
        assert model["model_version"] == good
        assert model["last_load_error"]["version"] == broken
        assert "movie_embeddings.npy" in model["last_load_error"]["message"]
        user_id = int(data.user_ids[0])
        assert client.get(f"/recommend/{user_id}").json()["model_version"] == good

        samples = random_samples(data, seed=3)
        samples["movie_bias"][0, 0, 0] = np.nan  # publishes fine, cannot be served
        nan_version = publish_posterior(tmp_path, samples=samples, data=data, config={})
        outcome = client.post("/admin/reload", headers=AUTH).json()
        assert outcome["model_version"] == good and "NaN" in outcome["error"]
        assert client.get("/model").json()["last_load_error"]["version"] == nan_version

        fixed = publish(tmp_path, data, seed=4).version
        outcome = client.post("/admin/reload", headers=AUTH).json()
        assert outcome == {"model_version": fixed, "changed": True, "error": None}
    assert {v.version: v.pins for v in list_versions(tmp_path)}[fixed] == 0


def test_server_starts_empty_and_picks_up_the_first_version(tmp_path):
    data = tiny_data(num_users=10, num_movies=8)
    settings = app_settings(tmp_path, poll_interval_s=0.05)
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 503
        version = publish(tmp_path, data).version
        wait_for_version(client, version)
        assert client.get(f"/recommend/{int(data.user_ids[0])}").status_code == 200


def test_gc_after_a_publish_keeps_the_version_the_server_serves(tmp_path, monkeypatch):
    """The server pins what it serves, so the gc that ends every publish never deletes it,
    however many newer versions arrive before it swaps."""
    monkeypatch.setenv("SHARDLENS_KEEP_VERSIONS", "1")
    data = tiny_data(num_users=6, num_movies=5)
    served = publish(tmp_path, data, seed=1).version
    holder = ModelHolder(tmp_path, cache_dir=None, policy="latest")
    try:
        assert holder.refresh().served_version == served
        newer = [publish(tmp_path, data, seed=s).version for s in (2, 3)]
        left = {v.version for v in list_versions(tmp_path)}
        assert left == {served, newer[1]}  # newer[0]: neither newest nor served
        assert holder.current is not None and holder.current.name == served
    finally:
        holder.stop()
    publish(tmp_path, data, seed=4)  # the holder released its pin: now it may go
    assert served not in {v.version for v in list_versions(tmp_path)}
