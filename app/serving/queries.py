"""What a recommendation request asks of the served version, answered without HTTP.

`known_user` serves a user in the posterior from the precomputed picks and probabilities;
`fold_in_user` first draws a new user's variables per sample (`common.foldin`). Both build
the same `RecommendResponse`.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import numpy as np

from app.schemas import (
    ConvergenceNote,
    FoldInNote,
    GenreCount,
    Interval,
    MovieRecommendation,
    MovieRef,
    RecommendResponse,
    Uncertainty,
)
from app.serving.model_state import Served
from app.serving.recommend import (
    RecommendationResult,
    candidate_mask,
    picks_for_user,
    recommend,
    union_picks,
)
from common.foldin import METHOD, laplace_fold_in, layout_logits, prior_predictive
from common.picks import Rank, sigmoid, top_unwatched

__all__ = ["INTERVAL", "Query", "fold_in_user", "known_user", "movie_ref", "scores_samples"]

INTERVAL = 0.90


class Query(NamedTuple):
    """A normalised request: sorted genres and excluded ids, excluded movie indices."""

    k: int
    rank: Rank
    genres: list[str]
    exclude: list[str]  # public ids, as echoed in the answer
    excluded: list[int]  # their movie indices


def _candidates(served: Served, watched: np.ndarray, query: Query) -> np.ndarray:
    num_movies = served.version.num_movies
    if query.genres:
        eligible = candidate_mask(served.catalog, query.genres, num_movies)
    else:
        eligible = np.ones(num_movies, dtype=bool)
    eligible[watched] = False
    eligible[query.excluded] = False
    return eligible


def convergence_note(served: Served) -> ConvergenceNote:
    """Whether the served version converged, with its warning (for every answer about it)."""
    record = served.convergence
    return ConvergenceNote.model_construct(
        status=record.status, converged=record.converged, warning=served.warning
    )


def _ranked(
    served: Served,
    picks: np.ndarray,
    user_emb: np.ndarray,
    user_bias: np.ndarray,
    mean_probability: np.ndarray,
    candidates: np.ndarray,
    query: Query,
) -> RecommendationResult:
    """Rank one user's candidates from their picks [samples] and draws (U [samples, D],
    u [samples]) and posterior-mean probabilities [movies], as `query` asks."""
    return recommend(
        picks,
        catalog=served.catalog,
        user_embeddings=user_emb,
        user_bias=user_bias,
        movie_major=served.movie_major,
        mean_probability=mean_probability,
        candidates=candidates,
        rank=query.rank,
        k=query.k,
    )


def movie_ref(served: Served, index: int) -> MovieRef:
    """Movie `index` of the served version as the API names it: public id, title, genres."""
    version = served.version
    return MovieRef(
        movie_id=str(version.movie_ids[index]),
        title=version.titles[index],
        genres=list(version.genres[index]),
    )


def _response(
    served: Served,
    result: RecommendationResult,
    *,
    user_id: str | None,
    watched_count: int,
    query: Query,
    fold_in: FoldInNote | None,
) -> RecommendResponse:
    version = served.version
    movie_ids, titles, all_genres = version.movie_ids, version.titles, version.genres
    unc = result.uncertainty
    note = None
    if unc.entropy_bits is None:
        note = (
            "no candidate movie: the genre filter and exclusions leave no unwatched movie, "
            "so no sample has a pick and the pick distribution has no entropy"
        )
    # Every value below is already a checked Python int/float/str: skip re-validation.
    return RecommendResponse.model_construct(
        user_id=user_id,
        model_version=served.name,
        num_samples=result.num_samples,
        watched_count=watched_count,
        rank=query.rank,
        k=query.k,
        genre_filter=query.genres,
        exclude=query.exclude,
        candidates=result.num_candidates,
        recommendations=[
            MovieRecommendation.model_construct(
                movie_id=str(movie_ids[r.movie_index]),
                title=titles[r.movie_index],
                genres=list(all_genres[r.movie_index]),
                count=r.votes,
                share=float(r.share),
                probability=r.probability_mean,
                interval=Interval.model_construct(
                    level=INTERVAL, low=r.probability_low, high=r.probability_high
                ),
            )
            for r in result.recommendations
        ],
        genres=[
            GenreCount.model_construct(genre=g.genre, count=g.votes, share=float(g.share))
            for g in result.genres
        ],
        uncertainty=Uncertainty.model_construct(
            entropy_bits=unc.entropy_bits,
            distinct_movies=unc.distinct_picks,
            top_share=unc.top_share,
            note=note,
        ),
        convergence=convergence_note(served),
        fold_in=fold_in,
    )


def _genre_columns(served: Served, query: Query) -> list[int] | None:
    """The query's genres as columns of the precomputed genre picks; None when there are
    no genres, or no precomputed picks for all of them."""
    axis = served.catalog.filter_genres
    if served.genre_picks is None or not query.genres or not set(query.genres) <= set(axis):
        return None
    return [axis.index(g) for g in query.genres]


def _superset_picks(
    served: Served, index: int, user_embeddings: np.ndarray, query: Query
) -> np.ndarray:
    """User `index`'s picks over the smallest precomputed superset of the query's candidates:
    the genre's picks for one genre, the best of the genres' picks for several (when genre
    picks were precomputed), else the unfiltered picks."""
    columns = _genre_columns(served, query)
    if columns is None or served.genre_picks is None:
        return served.picks[index]
    rows = served.genre_picks[index, columns]
    if len(columns) == 1:
        return rows[0]
    return union_picks(rows, user_embeddings, served.movie_major)


def scores_samples(served: Served, query: Query) -> bool:
    """Whether answering `query` for a known user may score samples (tens of ms at 1,000
    samples; callers keep it off the event loop): exclusions, or a genre filter without
    precomputed genre picks. Plain and genre-filtered requests only read precomputed rows."""
    if query.excluded:
        return True
    return bool(query.genres) and _genre_columns(served, query) is None


def known_user(served: Served, user_id: str, index: int, query: Query) -> RecommendResponse:
    """The answer for user `index` of the served version (precomputed picks when neither a
    genre filter nor exclusions change the candidates)."""
    version = served.version
    user_emb, user_bias = version.user_samples(index)
    watched = version.watched(index)
    candidates = _candidates(served, watched, query)
    if query.genres or query.excluded:
        picks = picks_for_user(
            user_embeddings=user_emb,
            movie_features=served.fold_in.features,
            movie_bias=served.fold_in.offsets,
            eligible=candidates,
            superset_picks=_superset_picks(served, index, user_emb, query),
            movie_major=served.movie_major,
        )
    else:
        picks = served.picks[index]
    result = _ranked(
        served, picks, user_emb, user_bias, served.mean_probability[index], candidates, query
    )
    return _response(
        served, result, user_id=user_id, watched_count=int(watched.size), query=query, fold_in=None
    )


def _seed(served: Served, watched: list[int]) -> int:
    """Draws depend on the version and the watched list only: the same body, the same answer."""
    text = f"{served.name}:{','.join(map(str, watched))}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def fold_in_user(served: Served, watched: list[int], query: Query) -> RecommendResponse:
    """The answer for a new user who watched `watched` (sorted distinct movie indices)."""
    version = served.version
    rng = np.random.default_rng(_seed(served, watched))
    if watched:
        fold = laplace_fold_in(
            served.fold_in,
            np.asarray(watched, dtype=np.int64),
            prior_scale=served.prior_scale,
            rng=rng,
        )
        user_emb, user_bias, steps, method = (
            fold.user_embeddings,
            fold.user_bias,
            fold.newton_steps,
            METHOD,
        )
    else:
        user_emb, user_bias = prior_predictive(
            version.num_samples, version.latent_dim, prior_scale=served.prior_scale, rng=rng
        )
        steps, method = 0, "prior"
    watched_index = np.asarray(watched, dtype=np.intp)
    candidates = _candidates(served, watched_index, query)
    logits = layout_logits(served.fold_in, user_emb, user_bias)  # [K, M] float32
    mean_probability = sigmoid(logits).mean(axis=0, dtype=np.float64)
    picks = top_unwatched(logits, ~candidates)
    result = _ranked(served, picks, user_emb, user_bias, mean_probability, candidates, query)
    note = FoldInNote.model_construct(
        method=method,
        watched=len(watched),
        cold_start=not watched,
        prior_scale=served.prior_scale,
        newton_steps=steps,
    )
    return _response(
        served, result, user_id=None, watched_count=len(watched), query=query, fold_in=note
    )
