"""Load time, host memory and per-device bytes at MovieLens sizes, on synthetic data.

    python bench/data_scale.py [--shapes ml-1m,ml-10m,ml-25m] [--slice-users 8192]
        [--likelihood fast] [--devices 1,8] [--workdir var/bench/data_scale]

For each shape, synthetic ratings with that release's users, movies and ratings count
(skewed activity and popularity, half-star ratings, timestamps) are written once in that
release's exact file format (ml-1m and ml-10m `::` files, ml-25m CSV), then loaded by
`load_source` in a fresh process: the wall time and the process's peak RSS are measured.
Per-device bytes come from the formula training checks before it compiles
(`training.run.memory`). XLA's own figure is measured by compiling one segment on a slice of
the users (all movies): ml-1m whole; ml-10m and ml-25m as `--slice-users` users, since the
whole matrix of the large shapes does not fit this 24 GiB machine with one device. The
full-shape figures for those are extrapolated by the formula, which the slice checks.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

SHAPES = {  # users, movies, ratings: the GroupLens releases' sizes
    "ml-1m": (6_040, 3_706, 1_000_209),
    "ml-10m": (69_878, 10_677, 10_000_054),
    "ml-25m": (162_541, 59_047, 25_000_095),
}


def write_release(name: str, folder: Path, seed: int = 0) -> Path:
    """Write synthetic `name`-shaped files in the release's format (once; reused)."""
    import numpy as np
    import pandas as pd

    done = folder / ".complete"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    users, movies, ratings = SHAPES[name]
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(0.0, 1.0, users)
    user = rng.choice(users, size=ratings, p=activity / activity.sum())
    user[:users] = np.arange(users)  # every user rates at least once
    popularity = 1.0 / np.arange(1, movies + 1) ** 0.9
    movie = rng.choice(movies, size=ratings, p=popularity / popularity.sum())
    movie[users : users + movies] = np.arange(movies)  # every movie is rated
    frame = pd.DataFrame(
        {
            "user": user + 1,
            "movie": movie + 1,
            "rating": rng.integers(1, 11, ratings) / 2,
            "timestamp": rng.integers(789_652_009, 1_574_327_703, ratings),
        }
    )
    titles = [f"Movie {j} (19{j % 100:02d})" for j in range(1, movies + 1)]
    genres = ["Comedy|Drama", "Action|Sci-Fi|IMAX", "(no genres listed)", "Children|Animation"]
    catalog = pd.DataFrame(
        {"movieId": np.arange(1, movies + 1), "title": titles,
         "genres": [genres[j % 4] for j in range(movies)]}
    )  # fmt: skip
    if name == "ml-25m":
        frame.columns = ["userId", "movieId", "rating", "timestamp"]
        frame.to_csv(folder / "ratings.csv", index=False)
        catalog.to_csv(folder / "movies.csv", index=False)
    else:
        text = frame.to_csv(sep="\t", header=False, index=False).replace("\t", "::")
        (folder / "ratings.dat").write_text(text)
        rows = catalog.astype(str).agg("::".join, axis=1)
        (folder / "movies.dat").write_text("\n".join(rows) + "\n", encoding="utf-8")
    done.touch()
    return folder


def measure_load(folder: Path) -> dict:
    """In this process: load the folder, report seconds and peak RSS."""
    from training.data import load_source

    t0 = time.perf_counter()
    data = load_source(str(folder))
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "load_seconds": round(seconds, 2),
        "peak_rss_bytes": peak,
        "users": data.num_users,
        "movies": data.num_movies,
        "watches": data.num_watches,
    }


def measure_slice(folder: Path, slice_users: int, likelihood: str) -> dict:
    """In this process: compile one segment for the first `slice_users` users (all movies)
    on one CPU device; XLA's per-device bytes next to the formula's for that slice."""
    import dataclasses

    import numpy as np

    from training.config import TrainConfig
    from training.data import load_source
    from training.parallel.mesh import make_mesh
    from training.run.memory import device_bytes
    from training.run.segments import Segments, prepare

    data = load_source(str(folder))
    n = min(slice_users, data.num_users)
    keep = data.user_index < n
    part = dataclasses.replace(
        data,
        user_ids=data.user_ids[:n],
        user_index=data.user_index[keep],
        movie_index=data.movie_index[keep],
        timestamps=None,
    )
    config = TrainConfig(
        data="bench", num_chains=2, latent_dim=20, devices=1, segment_size=10,
        num_leapfrog_steps=2, num_burnin_steps=0, num_results=10, likelihood=likelihood,
    )  # fmt: skip
    segments = Segments(config, prepare(part, num_devices=1), make_mesh(1))
    state, results = segments.init()
    segments.compile(state, results, 10)
    xla = segments.program.memory_analysis(10) or {}
    measured = xla["arguments"] + xla["outputs"] + xla["temporaries"] - xla["aliased"]
    formula = device_bytes(n=n, m=data.num_movies, d=20, c=2, p=1, t=10,
                           likelihood=likelihood, ordered=False)["total"]  # fmt: skip
    return {"slice_users": n, "xla_bytes": measured, "formula_bytes": formula,
            "formula_over_xla": round(formula / measured, 3), "movies": int(np.int64(data.num_movies))}  # fmt: skip


def _child(mode: str, folder: Path, *extra: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, f"--{mode}", str(folder), *extra],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shapes", default="ml-1m,ml-10m,ml-25m")
    ap.add_argument("--slice-users", type=int, default=8192)
    ap.add_argument("--likelihood", default="fast", choices=("fast", "reference"))
    ap.add_argument("--devices", default="1,8", help="device counts for the per-device figures")
    ap.add_argument("--workdir", default="var/bench/data_scale")
    ap.add_argument("--load", help=argparse.SUPPRESS)
    ap.add_argument("--slice", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.load:
        print(json.dumps(measure_load(Path(args.load))))
        return
    if args.slice:
        print(json.dumps(measure_slice(Path(args.slice), args.slice_users, args.likelihood)))
        return

    from training.run.memory import device_bytes, size

    for name in args.shapes.split(","):
        users, movies, ratings = SHAPES[name]
        t0 = time.perf_counter()
        folder = write_release(name, Path(args.workdir) / name)
        written = time.perf_counter() - t0
        load = _child("load", folder)
        whole = name == "ml-1m"
        slice_users = users if whole else args.slice_users
        xla = _child("slice", folder, "--slice-users", str(slice_users),
                     "--likelihood", args.likelihood)  # fmt: skip
        per_device = {
            p: device_bytes(n=users, m=movies, d=20, c=2, p=p, t=50,
                            likelihood=args.likelihood, ordered=False)["total"]
            for p in map(int, args.devices.split(","))
        }  # fmt: skip
        print(f"{name}: {users:,} x {movies:,}, {ratings:,} ratings "
              f"({'written' if written > 1 else 'reused'} in {written:.0f} s)")  # fmt: skip
        print(f"  load      {load['load_seconds']:.1f} s, peak RSS {size(load['peak_rss_bytes'])}, "
              f"{load['watches']:,} watches")  # fmt: skip
        what = "whole matrix" if whole else f"slice of {xla['slice_users']:,} users, all movies"
        print(f"  XLA       {size(xla['xla_bytes'])} per device for the {what} "
              f"(formula {size(xla['formula_bytes'])}, x{xla['formula_over_xla']})")  # fmt: skip
        label = "formula, checked against XLA above" if whole else "formula, extrapolated"
        for p, total in per_device.items():
            print(f"  {p} device(s): {size(total)} per device ({label}; D=20, C=2, T=50, "
                  f"{args.likelihood} likelihood)")  # fmt: skip
        print(json.dumps({"shape": name, "load": load, "xla_slice": xla, "per_device": per_device}))


if __name__ == "__main__":
    main()
