"""Load time and peak RSS of the tfds source, cold and cached, at MovieLens sizes.

Writes synthetic GroupLens files of ml-1m's size (1,000,209 ratings, 6,040 users, 3,706
movies) and ml-100k's (100,000 ratings, 943 users, 1,682 movies), prepares them as
`movielens/1m-ratings` and `movielens/100k-ratings` in the array_record format with tfds's
own builder (as `tests/helpers/tfds_files.py` does: once, kept in --workdir; 9 to 30 minutes for
ml-1m on a busy 2-core machine), then loads each in fresh processes:

- cold: the first load, decoding every record (and writing the cache);
- cached: the next load, from the cache.

Times are measured in-process after the imports (tfds, numpy, this project). CPU is user +
system time of the load (array_record's reader decompresses on a thread pool, so on an
idle machine the wall time can be below it); on a loaded machine (see the load average
printed) the wall time is longer. Peak RSS is the loading process's
high-water mark (VmHWM), imports included; the RSS after the imports is printed beside it.

    PYTHONPATH=. .venv/bin/python bench/tfds_load.py              # both sizes
    PYTHONPATH=. .venv/bin/python bench/tfds_load.py --size 1m --repeat 3
    PYTHONPATH=. .venv/bin/python bench/tfds_load.py --size 100k --scale 0.01 --workdir /tmp/x
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.data.grouplens import ML100K_GENRES  # noqa: E402

SIZES = {  # config: (release folder, ratings, users, movies)
    "1m": ("ml-1m", 1_000_209, 6_040, 3_706),
    "100k": ("ml-100k", 100_000, 943, 1_682),
}
GENRES_1M = ML100K_GENRES[1:]  # the 18 GroupLens genres, without "unknown"


def _cells(rng: np.random.Generator, ratings: int, users: int, movies: int) -> np.ndarray:
    """`ratings` distinct (user, movie) cells covering every user and every movie."""
    k = np.arange(max(users, movies))
    cover = (k % users) * movies + k % movies
    drawn = rng.choice(users * movies, ratings, replace=False)
    both = np.concatenate([cover, drawn])
    _, first = np.unique(both, return_index=True)
    return both[np.sort(first)][:ratings]


def write_synthetic(size: str, extracted: Path, *, scale: float = 1.0, seed: int = 0) -> None:
    """GroupLens files of the given size, in the exact ml-1m or ml-100k format. `scale`
    shrinks the ratings by itself and users and movies by its square root (same density)."""
    release, ratings, users, movies = SIZES[size]
    ratings = round(ratings * scale)
    users, movies = (round(count * scale**0.5) for count in (users, movies))
    rng = np.random.default_rng(seed)
    cells = _cells(rng, ratings, users, movies)
    user, movie = cells // movies + 1, cells % movies + 1
    stars = rng.integers(1, 6, ratings)
    stamps = 956_703_932 + rng.integers(0, 90_000_000, ratings)
    folder = extracted / release
    folder.mkdir(parents=True, exist_ok=True)
    rows = zip(user.tolist(), movie.tolist(), stars.tolist(), stamps.tolist(), strict=True)
    if size == "1m":
        (folder / "ratings.dat").write_text("".join(f"{u}::{m}::{r}::{t}\n" for u, m, r, t in rows))
        lines = []
        for j in range(1, movies + 1):
            genres = rng.choice(GENRES_1M, rng.integers(1, 4), replace=False)
            lines.append(f"{j}::Synthetic Movie {j} (1995)::{'|'.join(genres)}\n")
        (folder / "movies.dat").write_text("".join(lines), encoding="iso-8859-1")
        (folder / "users.dat").write_text(
            "".join(f"{i}::{'MF'[i % 2]}::25::{i % 21}::{10000 + i}\n" for i in range(1, users + 1))
        )
    else:
        (folder / "u.data").write_text("".join(f"{u}\t{m}\t{r}\t{t}\n" for u, m, r, t in rows))
        lines = []
        for j in range(1, movies + 1):
            flags = np.zeros(19, int)
            flags[rng.choice(19, rng.integers(1, 4), replace=False)] = 1
            bits = "|".join(map(str, flags.tolist()))
            lines.append(f"{j}|Synthetic Movie {j} (1995)|01-Jan-1995||http://x.invalid/|{bits}\n")
        (folder / "u.item").write_text("".join(lines), encoding="iso-8859-1")
        (folder / "u.user").write_text(
            "".join(
                f"{i}|{20 + i % 50}|{'MF'[i % 2]}|writer|{10000 + i}\n" for i in range(1, users + 1)
            )
        )


def prepare(size: str, workdir: Path, *, scale: float = 1.0) -> Path:
    """The tfds data dir holding `movielens/<size>-ratings`, prepared once."""
    from tests.helpers.tfds_files import prepare_movielens

    data_dir = workdir / "tensorflow_datasets"
    done = data_dir / "movielens" / f"{size}-ratings"
    if any(done.glob("*/dataset_info.json")):
        return data_dir
    extracted = workdir / f"grouplens-{size}"
    shutil.rmtree(extracted, ignore_errors=True)
    print(f"writing synthetic GroupLens {size} files ...", flush=True)
    write_synthetic(size, extracted, scale=scale)
    started = time.perf_counter()
    print(f"preparing movielens/{size}-ratings with tfds's builder (array_record) ...", flush=True)
    prepare_movielens(f"{size}-ratings", extracted, data_dir)
    print(f"  prepared in {time.perf_counter() - started:.0f} s", flush=True)
    shutil.rmtree(extracted, ignore_errors=True)
    return data_dir


def _status_mib(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmHWM: peak RSS since exec;
    getrusage's ru_maxrss would carry over the parent's peak across fork and exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def child(size: str, data_dir: str, cache_root: str) -> None:
    """One load in this process; prints a JSON line of figures."""
    import tensorflow_datasets  # noqa: F401  (imports are not timed)

    from training.data.tfds import read_tfds

    before = resource.getrusage(resource.RUSAGE_SELF)
    rss_after_imports = _status_mib("VmHWM")
    wall = time.perf_counter()
    data = read_tfds(f"movielens/{size}-ratings", data_dir=data_dir, cache_roots=[cache_root])
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(
        json.dumps(
            {
                "wall_s": wall,
                "cpu_s": cpu,
                "peak_rss_mib": _status_mib("VmHWM"),
                "rss_after_imports_mib": rss_after_imports,
                "shape": [data.num_users, data.num_movies, data.num_watches],
            }
        )
    )


def measure(size: str, data_dir: Path, cache_root: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", size, str(data_dir), str(cache_root)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"load failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=[*SIZES, "both"], default="both")
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench" / "tfds")
    parser.add_argument("--repeat", type=int, default=1, help="cold+cached pairs per size")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="shrink the sizes (a smoke run; new --workdir)"
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    sizes = list(SIZES) if args.size == "both" else [args.size]
    for size in sizes:
        data_dir = prepare(size, args.workdir, scale=args.scale)
        for run in range(args.repeat):
            cache_root = args.workdir / f"cache-{size}"
            shutil.rmtree(cache_root, ignore_errors=True)
            for phase in ("cold", "cached"):
                figures = measure(size, data_dir, cache_root)
                users, movies, watches = figures["shape"]
                print(
                    f"RESULT movielens/{size}-ratings {phase:<6} run {run + 1}: "
                    f"wall {figures['wall_s']:6.2f} s  cpu {figures['cpu_s']:6.2f} s  "
                    f"peak RSS {figures['peak_rss_mib']:5.0f} MiB "
                    f"({figures['rss_after_imports_mib']:.0f} after imports)  "
                    f"{users} x {movies}, {watches} watches  "
                    f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
                    flush=True,
                )


if __name__ == "__main__":
    main()
