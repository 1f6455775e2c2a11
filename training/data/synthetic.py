"""The embedded default data: a watch matrix drawn from the model's own generative process.

U ~ N(0, s_e^2) [users, D], V ~ N(0, s_e^2) [movies, D], u ~ N(0, 1) [users],
v ~ N(mu_v, s_v^2) [movies], W_ij ~ Bernoulli(sigmoid(U_i . V_j + u_i + v_j)).

This is the likelihood the project fits, with prior hyperparameters chosen so that the
data look like MovieLens: a few percent dense, and skewed popularity (the movie-bias spread
gives a long tail). The generating latents are returned as `truth`, so a fitted posterior
can be checked against them. Titles and genres are made up; a movie's genre follows its
embedding, so tastes and genres correlate as they do in real data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from common.sources import synthetic_size_problem
from training.data.errors import DataError
from training.data.genre_mapping import GENRES
from training.data.watch import SyntheticTruth, WatchData, build_watch_data

__all__ = [
    "SYNTHETIC_GENRES",
    "SyntheticSpec",
    "generate",
]

_ADJECTIVES = (
    "Silent", "Crimson", "Last", "Hidden", "Broken", "Golden", "Endless", "Midnight",
    "Frozen", "Wild", "Distant", "Electric", "Quiet", "Burning", "Paper", "Lonely",
)  # fmt: skip
_NOUNS = (
    "Harbor", "Orchard", "Signal", "Empire", "Garden", "River", "Machine", "Summer",
    "Witness", "Frontier", "Lantern", "Island", "Voyage", "Promise", "Mirror", "Storm",
)  # fmt: skip

# Genres a synthetic movie can get (the reference list without the placeholders).
SYNTHETIC_GENRES = tuple(g for g in GENRES if g not in ("Unknown", "(no genres listed)", "IMAX"))


@dataclass(frozen=True, kw_only=True)
class SyntheticSpec:
    """Sizes and hyperparameters of a synthetic dataset."""

    num_users: int = 1000
    num_movies: int = 600
    latent_dim: int = 4
    seed: int = 0
    embedding_scale: float = 0.8
    movie_bias_mean: float = -4.5
    movie_bias_scale: float = 1.2
    user_bias_scale: float = 0.8

    def validate(self) -> None:
        problem = synthetic_size_problem(
            num_users=self.num_users, num_movies=self.num_movies, latent_dim=self.latent_dim
        )
        if problem:
            raise DataError(problem)
        if min(self.embedding_scale, self.movie_bias_scale, self.user_bias_scale) < 0:
            raise DataError("synthetic scales must be non-negative")


def _title(rng: np.random.Generator, index: int) -> str:
    adjective = _ADJECTIVES[rng.integers(len(_ADJECTIVES))]
    noun = _NOUNS[rng.integers(len(_NOUNS))]
    year = 1930 + int(rng.integers(70))
    return f"The {adjective} {noun} #{index + 1} ({year})"


def generate(spec: SyntheticSpec | None = None) -> WatchData:
    """Draw a watch matrix and its truth from the generative model (seeded, deterministic)."""
    spec = spec or SyntheticSpec()
    spec.validate()
    rng = np.random.default_rng(spec.seed)
    d = spec.latent_dim
    user_embeddings = rng.normal(0.0, spec.embedding_scale, (spec.num_users, d))
    movie_embeddings = rng.normal(0.0, spec.embedding_scale, (spec.num_movies, d))
    user_bias = rng.normal(0.0, spec.user_bias_scale, spec.num_users)
    movie_bias = rng.normal(spec.movie_bias_mean, spec.movie_bias_scale, spec.num_movies)
    truth = SyntheticTruth(user_embeddings, user_bias, movie_embeddings, movie_bias)
    watched = rng.random((spec.num_users, spec.num_movies)) < truth.probabilities()
    # Every user and movie appears in real MovieLens; keep that property.
    # Every user and movie appears in real MovieLens: give each empty row and column its
    # most likely watch.
    logits = truth.logits()
    idle_users = np.flatnonzero(~watched.any(axis=1))
    watched[idle_users, logits[idle_users].argmax(axis=1)] = True
    unseen_movies = np.flatnonzero(~watched.any(axis=0))
    watched[logits[:, unseen_movies].argmax(axis=0), unseen_movies] = True
    genre_axes = rng.normal(size=(d, len(SYNTHETIC_GENRES)))
    affinity = movie_embeddings @ genre_axes + rng.gumbel(
        size=(spec.num_movies, len(SYNTHETIC_GENRES))
    )
    ranked = np.argsort(-affinity, axis=1)
    catalog: dict[int, tuple[str, tuple[str, ...]]] = {}
    for j in range(spec.num_movies):
        n_genres = 1 + int(rng.random() < 0.4) + int(rng.random() < 0.15)
        genres = tuple(SYNTHETIC_GENRES[k] for k in ranked[j, :n_genres])
        catalog[j + 1] = (_title(rng, j), genres)
    users, movies = np.nonzero(watched)
    data = build_watch_data(
        source=f"synthetic:users={spec.num_users},movies={spec.num_movies},seed={spec.seed}",
        rating_user_ids=users + 1,
        rating_movie_ids=movies + 1,
        movie_catalog=catalog,
    )
    # Ids are 1..N and 1..M; factorized order is order of first appearance, so the truth
    # is permuted to match the columns (and rows) of the watch matrix.
    rows, cols = data.user_ids - 1, data.movie_ids - 1
    truth = SyntheticTruth(
        user_embeddings[rows], user_bias[rows], movie_embeddings[cols], movie_bias[cols]
    )
    return dataclasses.replace(data, truth=truth)
