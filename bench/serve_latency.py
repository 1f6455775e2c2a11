"""Serving latency over real HTTP: a full ml-1m-sized posterior behind one uvicorn worker.

Creates (or reuses, with --store) a synthetic posterior with ml-1m's shapes (6040 users,
3706 movies, D = 20, 500 draws x 2 chains = 1,000 samples; synthetic samples scattered
around a synthetic truth, not a fitted posterior), starts `python -m app` on 127.0.0.1,
warms up, then drives it with `wrk` (apt-get install wrk; users rotated over all of them):
GET /recommend in both rank modes, saturated (16 connections, no pause) and paced (the same
connections offering about `--rate` requests/s through think times); with `genre=Comedy`,
that genre with one exclusion, and two genres; POST /recommend (fold-in of 20 watched movies)
and POST /recommend/batch of 100 ids (1 and 4 connections). Prints p50/p99 latency,
requests/s, the server's CPU per request, its resident memory (anonymous and file-backed,
after the precomputation and after the run) and the load time, with `uptime` before and
after (the machine's load).
`--python-client` adds the older httpx-driven figures (the client then competes with the
server for the cores).

    python bench/serve_latency.py [--store var/bench-store] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.wrk_load import WrkRequest, run_wrk, wrk_available  # noqa: E402
from storage.posterior import latest_version, open_posterior, publish_posterior  # noqa: E402
from training.data import SyntheticSpec, generate  # noqa: E402


def ensure_posterior(store: Path, args: argparse.Namespace) -> str:
    """The store's latest version if it has the requested shapes; else publish one."""
    if latest_version(store) is not None:
        v = open_posterior(store, verify=False)
        shape = (v.num_users, v.num_movies, v.latent_dim, v.num_draws, v.num_chains)
        if shape == (args.users, args.movies, args.dim, args.draws, args.chains):
            print(f"reusing version {v.version} in {store}")
            return v.version
    started = time.perf_counter()
    data = generate(
        SyntheticSpec(
            num_users=args.users, num_movies=args.movies, latent_dim=args.dim, embedding_scale=0.45
        )
    )
    rng = np.random.default_rng(0)
    s, c, n, m, d = args.draws, args.chains, args.users, args.movies, args.dim

    def around(center: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        out = rng.standard_normal(shape, dtype=np.float32)
        out *= 0.3
        out += center.astype(np.float32)
        return out

    truth = data.truth
    samples = {
        "user_embeddings": around(truth.user_embeddings, (s, c, n, d)),
        "user_bias": around(truth.user_bias, (s, c, n)),
        "movie_embeddings": around(truth.movie_embeddings, (s, c, m, d)),
        "movie_bias": around(truth.movie_bias, (s, c, m)),
    }
    version = publish_posterior(store, samples=samples, data=data, config={"bench": True})
    print(
        f"published {version}: {n} users x {m} movies, D={d}, {s}x{c} samples, "
        f"{data.density:.1%} dense, in {time.perf_counter() - started:.1f} s"
    )
    return version


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(store: Path, cache: Path) -> tuple[subprocess.Popen, str, float]:
    """`python -m app` with one worker; returns once /readyz answers 200."""
    port = free_port()
    env = {
        **os.environ,
        "SHARDLENS_POLL_INTERVAL_S": "0",
        "SHARDLENS_STORE_DIR": str(store),
        "SHARDLENS_CACHE_DIR": str(cache),
    }
    command = [sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", "1", "--log-level", "warning"]
    started = time.perf_counter()
    server = subprocess.Popen(command, env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    while True:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return server, base, time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.2)


def stop_server(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def memory(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            fields[key] = value.strip()
    return fields


async def drive(
    base: str, paths: list[str], concurrency: int
) -> tuple[np.ndarray, float, dict[int, int]]:
    """Latencies (s) of every request, wall time, status counts."""
    latencies = np.empty(len(paths))
    statuses: dict[int, int] = {}
    queue = iter(enumerate(paths))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:

        async def worker() -> None:
            for i, path in queue:
                t0 = time.perf_counter()
                response = await client.get(path)
                latencies[i] = time.perf_counter() - t0
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, time.perf_counter() - started, statuses


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(name: str, pid: int, base: str, paths: list[str], concurrency: int) -> None:
    """Drive `paths` and print latency, throughput and the server's CPU time per request.

    CPU per request does not depend on what else runs on the machine, so it shows the
    capacity of one worker even when the wall-clock figures are disturbed.
    """
    cpu_before = cpu_seconds(pid)
    latencies, wall, statuses = asyncio.run(drive(base, paths, concurrency))
    cpu_ms = (cpu_seconds(pid) - cpu_before) / len(paths) * 1e3
    p50, p99 = np.percentile(latencies * 1e3, [50, 99])
    print(
        f"{name:<34} n={latencies.size:<5} p50={p50:6.2f} ms  p99={p99:6.2f} ms  "
        f"{latencies.size / wall:6.1f} req/s  server CPU {cpu_ms:5.2f} ms/req "
        f"(= {1e3 / max(cpu_ms, 1e-9):5.0f} req/s per core)  statuses={statuses}"
    )


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def measure_wrk(
    name: str,
    pid: int,
    base: str,
    requests: list[WrkRequest],
    connections: int,
    seconds: float,
    *,
    rate: float | None = None,
) -> None:
    """Drive `requests` with wrk and print latency, throughput and server CPU per request;
    with `rate`, paced by think times to offer about that many requests per second."""
    cpu_before = cpu_seconds(pid)
    think_ms = None if rate is None else connections / rate * 1e3
    result = run_wrk(base, requests, connections=connections, seconds=seconds, think_ms=think_ms)
    cpu_ms = (cpu_seconds(pid) - cpu_before) / max(result.requests, 1) * 1e3
    lat = result.latency_ms
    print(
        f"{name:<48} c={connections:<3} n={result.requests:<6} p50={lat.get('50%', 0):7.2f} ms  "
        f"p90={lat.get('90%', 0):7.2f} ms  p99={lat.get('99%', 0):7.2f} ms  "
        f"{result.requests_per_s:7.1f} req/s  server CPU {cpu_ms:6.2f} ms/req  "
        f"non-2xx={result.non_2xx}" + (f"  socket errors: {result.errors}" if result.errors else "")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="reuse/create the posterior here")
    parser.add_argument("--users", type=int, default=6040)
    parser.add_argument("--movies", type=int, default=3706)
    parser.add_argument("--dim", type=int, default=20)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--genre-requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=10.0, help="wrk duration per scenario")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--rate",
        type=float,
        default=550.0,
        help="offered requests/s of the paced GET runs (think times between requests)",
    )
    parser.add_argument("--cache", type=Path, help="keep the precomputed arrays here (reused)")
    parser.add_argument(
        "--python-client", action="store_true", help="also run the httpx-driven measurements"
    )
    args = parser.parse_args(argv)
    if not wrk_available():
        raise SystemExit("wrk is not installed: apt-get install wrk")
    print(f"uptime before: {uptime()}")

    tmp = None
    if args.store is None:
        tmp = tempfile.TemporaryDirectory(prefix="shardlens-bench-")
        args.store = Path(tmp.name)
    version = ensure_posterior(args.store, args)
    served = open_posterior(args.store, verify=False)
    user_ids = served.user_ids
    movie_ids = served.movie_ids
    genres = sorted({g for gs in served.genres for g in gs})
    watched_lists = [served.watched(i) for i in range(min(served.num_users, 500))]
    del served

    cache = tempfile.TemporaryDirectory(prefix="shardlens-bench-cache-")
    cache_dir = args.cache or Path(cache.name)
    server, base, ready_s = start_server(args.store, cache_dir)
    try:
        model = httpx.get(f"{base}/model").json()
        print(
            f"server pid {server.pid} ready in {ready_s:.1f} s; version {version} loaded "
            f"(verify + precompute) in {model['load_seconds']:.1f} s; memory {memory(server.pid)}"
        )
        rng = np.random.default_rng(args.seed)

        def plain(n: int) -> list[str]:
            return [f"/recommend/{u}" for u in rng.choice(user_ids, n)]

        def filtered(n: int) -> list[str]:
            paths = []
            for u in rng.choice(user_ids, n):
                chosen = rng.choice(genres, 1 + int(rng.random() < 0.3), replace=False)
                paths.append(f"/recommend/{u}?" + "&".join(f"genre={g}" for g in chosen))
            return paths

        asyncio.run(drive(base, plain(300) + filtered(20), args.concurrency))  # warm-up
        pid, c, secs = server.pid, args.connections, args.seconds
        print(f"server memory after loading and warm-up: {memory(pid)}")
        rotated = [str(u) for u in rng.permutation(user_ids)]
        for rank in ("picks", "probability"):
            gets = [WrkRequest("GET", f"/recommend/{u}?rank={rank}") for u in rotated]
            measure_wrk(f"GET /recommend rank={rank}", pid, base, gets, c, secs)
            measure_wrk(
                f"GET /recommend rank={rank}, paced {args.rate:g}/s",
                pid,
                base,
                gets,
                c,
                secs,
                rate=args.rate,
            )
        comedy = [WrkRequest("GET", f"/recommend/{u}?genre=Comedy") for u in rotated]
        measure_wrk("GET /recommend genre=Comedy", pid, base, comedy, c, secs)
        excluding = [
            WrkRequest("GET", f"/recommend/{u}?genre=Comedy&exclude={movie_ids[j]}")
            for u, j in zip(rotated, rng.integers(0, len(movie_ids), len(rotated)), strict=True)
        ]
        measure_wrk("GET /recommend genre=Comedy, 1 excluded", pid, base, excluding, c, secs)
        two = [WrkRequest("GET", f"/recommend/{u}?genre=Comedy&genre=Drama") for u in rotated]
        measure_wrk("GET /recommend genre=Comedy&genre=Drama", pid, base, two, c, secs)
        fold_ins = []
        for seen in watched_lists:
            if seen.size >= 20:
                chosen = rng.choice(seen, 20, replace=False)
                body = json.dumps({"watched": [str(movie_ids[j]) for j in chosen], "k": 10})
                fold_ins.append(WrkRequest("POST", "/recommend", body))
        measure_wrk("POST /recommend fold-in, 20 watched", pid, base, fold_ins[:200], 2, secs)
        batches = [
            WrkRequest(
                "POST",
                "/recommend/batch",
                json.dumps({"user_ids": rotated[i : i + 100], "k": 10}),
            )
            for i in range(0, min(len(rotated), 4000), 100)
        ]
        for connections in (1, 4):
            measure_wrk("POST /recommend/batch, 100 ids", pid, base, batches, connections, secs)
        if args.python_client:
            c = args.concurrency
            measure("httpx: plain, concurrency 1", pid, base, plain(args.requests // 3), 1)
            measure(f"httpx: plain, concurrency {c}", pid, base, plain(args.requests), c)
            measure(f"httpx: genre, concurrency {c}", pid, base, filtered(args.genre_requests), c)
        print(f"server memory after the run: {memory(server.pid)}")
        print(f"uptime after: {uptime()}")
        print(
            f"machine: {cpu_model()}, {os.cpu_count()} cores (wrk and the server share them), "
            f"python {platform.python_version()}"
        )
    finally:
        stop_server(server)
    server, base, ready_s = start_server(args.store, cache_dir)
    try:
        model = httpx.get(f"{base}/model").json()
        print(
            f"restart with cached picks: ready in {ready_s:.1f} s (load {model['load_seconds']:.1f} s)"
        )
    finally:
        stop_server(server)
        cache.cleanup()
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
