"""A real uvicorn on 127.0.0.1: versions hot-swapped under load, shutdown with requests in flight."""

from __future__ import annotations

import asyncio
import collections
import signal
import time
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from tests.helpers.app_helpers import publish, tiny_data
from tests.helpers.figures import record
from tests.helpers.live_server import live_server

LOAD_SECONDS = 20.0
PUBLISH_EVERY_S = 3.0
CONCURRENCY = 8


class LoadResult(NamedTuple):
    sent: int
    failures: list[str]  # what went wrong, one entry per failed request
    versions: collections.Counter  # model_version -> responses
    readiness_checks: int
    readiness_failures: list[str]
    published: list[str]


async def load_while_publishing(base_url: str, store: Path, data, first: str) -> LoadResult:
    """CONCURRENCY workers request recommendations (every fourth genre-filtered) for
    LOAD_SECONDS while a new version is published every PUBLISH_EVERY_S seconds and /readyz
    is probed every 50 ms."""
    user_ids = [int(u) for u in data.user_ids]
    genre = data.first_genre[0]
    published = [first]
    failures: list[str] = []
    readiness_failures: list[str] = []
    versions: collections.Counter = collections.Counter()
    counts = {"sent": 0, "ready": 0}
    end = time.monotonic() + LOAD_SECONDS
    limits = httpx.Limits(max_connections=CONCURRENCY + 1)

    async with httpx.AsyncClient(base_url=base_url, timeout=10, limits=limits) as client:

        async def worker(w: int) -> None:
            n = 0
            while time.monotonic() < end:
                params = {"genre": genre} if (n + w) % 4 == 0 else {}
                user = user_ids[(7 * n + w) % len(user_ids)]
                n += 1
                counts["sent"] += 1
                try:
                    response = await client.get(f"/recommend/{user}", params=params)
                except httpx.HTTPError as exc:
                    failures.append(f"/recommend/{user}: {exc!r}")
                    continue
                if response.status_code != 200:
                    failures.append(f"/recommend/{user}: {response.status_code} {response.text}")
                    continue
                versions[response.json()["model_version"]] += 1

        async def readiness() -> None:
            while time.monotonic() < end:
                counts["ready"] += 1
                try:
                    response = await client.get("/readyz")
                    if response.status_code != 200:
                        readiness_failures.append(f"{response.status_code} {response.text}")
                except httpx.HTTPError as exc:
                    readiness_failures.append(repr(exc))
                await asyncio.sleep(0.05)

        async def publisher() -> None:
            seed = 100
            while time.monotonic() + PUBLISH_EVERY_S < end:
                await asyncio.sleep(PUBLISH_EVERY_S)
                seed += 1
                published.append((await asyncio.to_thread(publish, store, data, seed=seed)).version)

        await asyncio.gather(*(worker(w) for w in range(CONCURRENCY)), readiness(), publisher())
    return LoadResult(
        counts["sent"], failures, versions, counts["ready"], readiness_failures, published
    )


def wait_serving(base_url: str, version: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if httpx.get(f"{base_url}/readyz").json().get("model_version") == version:
            return
        time.sleep(0.05)
    raise AssertionError(f"the server did not serve {version} within {timeout_s} s")


@pytest.mark.slow
def test_hot_swap_under_load_loses_nothing(tmp_path):
    store = tmp_path / "store"
    data = tiny_data(num_users=30, num_movies=24)
    first = publish(store, data, seed=100).version
    with live_server(store, cache_dir=tmp_path / "cache") as server:
        result = asyncio.run(load_while_publishing(server.base_url, store, data, first))
        wait_serving(server.base_url, result.published[-1])
    log = server.process.stdout.read().decode()
    record(
        "hot_swap",
        requests=result.sent,
        failures=len(result.failures),
        readiness_checks=result.readiness_checks,
        readiness_failures=len(result.readiness_failures),
        versions_published=len(result.published),
        versions_served=len(result.versions),
        seconds=LOAD_SECONDS,
    )
    assert result.failures == [], result.failures[:5]
    assert result.readiness_failures == [], result.readiness_failures[:5]
    assert set(result.versions) <= set(result.published), "a response named an unknown version"
    assert len(result.published) >= 5 and len(result.versions) >= 4, result.versions
    assert result.sent == sum(result.versions.values()) and result.sent > 500
    assert server.process.returncode == 0, log
    assert "Traceback" not in log and "ERROR" not in log, log


@pytest.mark.slow
def test_sigterm_lets_requests_in_flight_finish(tmp_path):
    """48 genre-filtered requests (tens of ms each, on a posterior of 400 samples x 5000
    movies, with genre picks computed per request) are in flight when SIGTERM arrives: all
    complete and the server exits 0."""
    store = tmp_path / "store"
    data = tiny_data(num_users=40, num_movies=5000)
    publish(store, data, seed=1, draws=200, chains=2)
    genres = collections.Counter(g for movie in data.genres for g in movie)
    rare = genres.most_common()[-1][0]  # few unfiltered picks qualify: most samples re-score
    grace_s = 15
    # Precomputed genre picks would answer in a millisecond: compute them per request.
    env = {"SHARDLENS_SHUTDOWN_GRACE_S": str(grace_s), "SHARDLENS_GENRE_PICKS_MAX_MB": "0"}
    with live_server(store, cache_dir=tmp_path / "cache", env=env) as server:

        async def burst() -> tuple[list[float], list[str], float]:
            done: list[float] = []
            problems: list[str] = []
            sent = asyncio.Event()
            requests_sent = 0

            async def trace(event: str, info: dict) -> None:
                nonlocal requests_sent
                if event == "http11.send_request_body.complete":
                    requests_sent += 1
                    if requests_sent == len(users):
                        sent.set()

            limits = httpx.Limits(max_connections=48)
            async with httpx.AsyncClient(
                base_url=server.base_url, timeout=60, limits=limits
            ) as client:

                async def one(user: int) -> None:
                    try:
                        r = await client.get(
                            f"/recommend/{user}",
                            params={"genre": rare},
                            extensions={"trace": trace},
                        )
                        assert r.status_code == 200, r.text
                        assert r.json()["genre_filter"] == [rare]
                    except (httpx.HTTPError, AssertionError) as exc:
                        problems.append(repr(exc))
                    done.append(time.monotonic())

                users = [int(u) for u in data.user_ids[:24]] * 2
                tasks = [asyncio.create_task(one(user)) for user in users]
                await asyncio.wait_for(sent.wait(), timeout=30)  # all 48 written to sockets
                await asyncio.sleep(0.1)  # and read by the server
                signalled = time.monotonic()
                server.process.send_signal(signal.SIGTERM)
                await asyncio.gather(*tasks)
            return done, problems, signalled

        done, problems, signalled = asyncio.run(burst())
        exit_code = server.process.wait(timeout=grace_s + 5)
        exited = time.monotonic()
    log = server.process.stdout.read().decode()
    after = sum(t > signalled for t in done)
    record("shutdown", in_flight=len(done), completed_after_sigterm=after, failures=len(problems))
    assert problems == [], problems[:3]
    assert after > 0, "no request was still in flight at SIGTERM: make them slower"
    assert exit_code == 0, log
    assert exited - signalled < grace_s, log
