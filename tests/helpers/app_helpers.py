"""Helpers for the app tests: tiny synthetic posteriors published to a real store."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from app.settings import Settings
from storage.posterior import publish_posterior
from training.data import SyntheticSpec, WatchData, generate

PNG = b"\x89PNG\r\n\x1a\n" + bytes(24)  # enough of a PNG for serving tests


class Published(NamedTuple):
    version: str
    data: WatchData
    samples: dict[str, np.ndarray]  # reference shapes [S, C, ...]


def tiny_data(*, num_users: int = 30, num_movies: int = 24, seed: int = 0) -> WatchData:
    return generate(SyntheticSpec(num_users=num_users, num_movies=num_movies, seed=seed))


def random_samples(
    data: WatchData, *, draws: int = 6, chains: int = 2, dim: int = 3, seed: int = 0, noise=0.5
) -> dict[str, np.ndarray]:
    """Samples scattered around the data's truth, so picks concentrate but still vary."""
    rng = np.random.default_rng(seed)
    truth = data.truth
    n, m = data.num_users, data.num_movies
    d = min(dim, truth.user_embeddings.shape[1])

    def around(center: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return (center + noise * rng.standard_normal(shape)).astype(np.float32)

    return {
        "user_embeddings": around(truth.user_embeddings[:, :d], (draws, chains, n, d)),
        "user_bias": around(truth.user_bias, (draws, chains, n)),
        "movie_embeddings": around(truth.movie_embeddings[:, :d], (draws, chains, m, d)),
        "movie_bias": around(truth.movie_bias, (draws, chains, m)),
    }


def publish(store: Path, data: WatchData, *, seed: int = 0, **kwargs) -> Published:
    samples = random_samples(data, seed=seed, **kwargs)
    version = publish_posterior(
        store,
        samples=samples,
        data=data,
        config={"preset": "test", "seed": seed},
        diagnostics={"max_rhat": 1.01, "ess": np.array([10.0, 12.0])},
        files={"plots/trace.png": PNG, "notes/readme.txt": b"notes"},
    )
    return Published(version, data, samples)


def verdict(converged: bool) -> dict:
    """A convergence record as training writes it (`training.run.gate.assess`)."""
    return {
        "converged": converged,
        "thresholds": {
            "loglik_rhat": 1.05,
            "pair_rhat_median": 1.02,
            "pair_rhat_max": 1.1,
            "loglik_ess_bulk": 200.0,
        },
        "figures": {
            "loglik_rhat": 1.01 if converged else 1.21,
            "pair_rhat_median": 1.0,
            "pair_rhat_max": 1.03,
            "loglik_ess_bulk": 420.0,
        },
        "failures": [] if converged else ["log-likelihood split R-hat 1.21 > 1.05"],
    }


def publish_checked(store: Path, data: WatchData, *, converged: bool | None, seed: int = 0) -> str:
    """Publish a version whose manifest records `converged` (None: no record, as versions
    published before convergence was checked)."""
    return publish_posterior(
        store,
        samples=random_samples(data, seed=seed),
        data=data,
        config={"preset": "test", "seed": seed},
        diagnostics={"mean_acceptance": 0.8},
        convergence=None if converged is None else verdict(converged),
    )


def reference_picks(
    samples: dict[str, np.ndarray], data: WatchData, user: int, eligible: np.ndarray | None = None
) -> list[int]:
    """The reference procedure, literally: per sample, argsort descending, first unwatched."""
    s, c = samples["user_bias"].shape[:2]
    watched = set(data.watched_by(user).tolist())
    picks = []
    for draw in range(s):
        for chain in range(c):
            u = samples["user_embeddings"][draw, chain, user]
            scores = (
                samples["movie_embeddings"][draw, chain] @ u
                + samples["user_bias"][draw, chain, user]
                + samples["movie_bias"][draw, chain]
            )
            for j in np.argsort(-scores, kind="stable"):
                if j not in watched and (eligible is None or eligible[j]):
                    picks.append(int(j))
                    break
    return picks


def app_settings(store: Path, **overrides) -> Settings:
    """Server settings for a test store, with the picks cache next to (not in) the store."""
    overrides.setdefault("cache_dir", store.parent / f"{store.name}-picks-cache")
    return Settings(store_dir=store, **overrides)


def detail_text(body: dict) -> str:
    """An error body's `detail` as one text: the message itself, or for a 422 (FastAPI's
    list of problems) each problem's `loc: msg (got input)`."""
    detail = body["detail"]
    if isinstance(detail, str):
        return detail
    return "; ".join(
        ".".join(str(p) for p in e["loc"])
        + f": {e['msg']}"
        + (f" (got {e['input']!r})" if "input" in e else "")
        for e in detail
    )
