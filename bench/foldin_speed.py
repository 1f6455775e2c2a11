"""CPU time of one fold-in (`POST /recommend`'s Laplace step): served method against the reference.

Synthetic posterior samples with ml-1m's shape (M = 3706 movies, D = 20): a truth
V ~ N(0, 0.45^2), v ~ N(-4.5, 1.2^2) (as `bench/serve_latency.py`), each sample the truth plus
N(0, 0.3^2) noise, the samples split into `--chains` chains each rotated by its own random
orthogonal matrix (chains of this rotation-invariant model are). Each call folds in a
different synthetic user who watched `--watched` movies. For every K in `--samples` it prints
the CPU time per call (median and max) of `common.foldin.laplace_fold_in` (float32 Newton from
a pilot warm start, over a layout built once) and of `laplace_fold_in_exact` (float64 Newton,
the old method), and the largest differences between them: modes, and posterior-mean watch
probabilities over all movies (both methods draw with the same seed).

CPU time (`time.process_time`, all threads) is the figure that carries over from a shared
machine; run it at `nice -n 19` there. BLAS gets one thread, as in the server.

    python bench/foldin_speed.py [--samples 200 1000] [--calls 20] [--exact-calls 20]
"""

from __future__ import annotations

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # as app/__init__.py: one BLAS thread per request

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common.foldin import FoldIn, fold_in_layout, laplace_fold_in, laplace_fold_in_exact  # noqa: E402
from common.picks import sigmoid  # noqa: E402


def posterior(
    num_samples: int, num_movies: int, dim: int, chains: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Samples V [K, M, D], v [K, M] float32, and the truth (V [M, D], v [M]) they scatter around."""
    rng = np.random.default_rng(seed)
    truth_v = rng.normal(0.0, 0.45, (num_movies, dim))
    truth_c = rng.normal(-4.5, 1.2, num_movies)
    v = np.empty((num_samples, num_movies, dim), dtype=np.float32)
    c = np.empty((num_samples, num_movies), dtype=np.float32)
    for chain, rows in enumerate(np.array_split(np.arange(num_samples), chains)):
        rotation = np.linalg.qr(rng.normal(size=(dim, dim)))[0] if chain else np.eye(dim)
        for k in rows:
            v[k] = (truth_v + 0.3 * rng.standard_normal((num_movies, dim))) @ rotation
            c[k] = truth_c + 0.3 * rng.standard_normal(num_movies)
    return v, c, truth_v, truth_c


def watched_list(truth_v: np.ndarray, truth_c: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` movies a synthetic user (U ~ N(0, 0.45^2), u ~ N(0, 0.8^2)) would watch."""
    rng = np.random.default_rng(seed)
    logits = truth_v @ rng.normal(0.0, 0.45, truth_v.shape[1]) + rng.normal(0.0, 0.8) + truth_c
    return np.sort(np.argsort(-(logits + rng.gumbel(size=logits.size)))[:count])


def mean_probability(fold_in: FoldIn, v: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Posterior-mean watch probability [M] of the folded-in user (one draw per sample)."""
    z = np.matmul(v, fold_in.user_embeddings[:, :, None])[..., 0] + fold_in.user_bias[:, None]
    return sigmoid((z + c).astype(np.float64)).mean(axis=0)


def ms(seconds: list[float]) -> str:
    return f"median {1e3 * np.median(seconds):8.1f} ms, max {1e3 * max(seconds):8.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, nargs="+", default=[200, 1000], help="K values")
    parser.add_argument("--movies", type=int, default=3706, help="M (ml-1m: 3706)")
    parser.add_argument("--dim", type=int, default=20, help="D")
    parser.add_argument("--chains", type=int, default=4, help="chains, each rotated")
    parser.add_argument("--watched", type=int, default=20, help="movies per watched list")
    parser.add_argument("--calls", type=int, default=20, help="fold-ins per K (new method)")
    parser.add_argument(
        "--exact-calls", type=int, default=None, help="of those, how many also run the slow "
        "reference (default: all)",
    )  # fmt: skip
    parser.add_argument("--prior-scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    exact_calls = args.calls if args.exact_calls is None else min(args.exact_calls, args.calls)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}; BLAS threads "
          f"{os.environ['OPENBLAS_NUM_THREADS']}")  # fmt: skip
    for num_samples in args.samples:
        v, c, truth_v, truth_c = posterior(
            num_samples, args.movies, args.dim, args.chains, args.seed
        )
        started = time.process_time()
        layout = fold_in_layout(v, c)
        build = time.process_time() - started
        print(f"\nK={num_samples}, M={args.movies}, D={args.dim}, {args.chains} rotated chains, "
              f"{args.watched} watched; layout built once in {build:.2f} s CPU "
              f"({layout.features.nbytes / 2**20:.0f} MiB)")  # fmt: skip
        fast_cpu: list[float] = []
        exact_cpu: list[float] = []
        steps: list[int] = []
        mode_diff = prob_diff = 0.0
        for call in range(args.calls):
            watched = watched_list(truth_v, truth_c, args.watched, args.seed + 1 + call)
            started = time.process_time()
            fold = laplace_fold_in(
                layout, watched, prior_scale=args.prior_scale, rng=np.random.default_rng(call)
            )
            fast_cpu.append(time.process_time() - started)
            steps.append(fold.newton_steps)
            if call < exact_calls:
                started = time.process_time()
                reference = laplace_fold_in_exact(
                    v, c, watched, prior_scale=args.prior_scale, rng=np.random.default_rng(call)
                )
                exact_cpu.append(time.process_time() - started)
                mode_diff = max(mode_diff, float(np.abs(fold.mode - reference.mode).max()))
                diff = np.abs(mean_probability(fold, v, c) - mean_probability(reference, v, c))
                prob_diff = max(prob_diff, float(diff.max()))
        print(f"  laplace_fold_in (served):   {ms(fast_cpu)} over {len(fast_cpu)} calls; "
              f"Newton steps {min(steps)}-{max(steps)}")  # fmt: skip
        if exact_cpu:
            speedup = np.median(exact_cpu) / np.median(fast_cpu)
            print(f"  laplace_fold_in_exact (old): {ms(exact_cpu)} over {len(exact_cpu)} calls "
                  f"({speedup:.0f}x the served method's median)")  # fmt: skip
            print(f"  served vs exact over those calls: max |mode difference| {mode_diff:.1e}, "
                  f"max |posterior-mean probability difference| {prob_diff:.1e}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
