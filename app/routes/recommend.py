"""GET /recommend/{user_id}."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from starlette.concurrency import run_in_threadpool

from app.deps import ServedDep
from app.errors import error_responses
from app.model_state import Served
from app.params import UserId
from app.recommend import candidate_mask, picks_for_user, recommend
from app.routes.model import convergence_note
from app.schemas import GenreCount, MovieRecommendation, RecommendResponse, Uncertainty
from common.genres import GENRES

router = APIRouter(tags=["recommendations"])

Genre = Literal[GENRES]  # type: ignore[valid-type]


def lookup_user(served: Served, user_id: str) -> int:
    index = served.version.user_index(user_id)
    if index is None:
        raise HTTPException(
            404, f"user {user_id} is not in posterior version {served.name}; see GET /users"
        )
    return int(index)


def _recommend(
    served: Served, user_id: str, index: int, k: int, genres: list[str]
) -> RecommendResponse:
    version = served.version
    user_emb, user_bias = version.user_samples(index)
    if genres:
        eligible = candidate_mask(served.catalog, genres, version.num_movies)
        eligible[version.watched(index)] = False
        picks = picks_for_user(
            user_embeddings=user_emb,
            movie_embeddings=served.movie_embeddings,
            movie_bias=served.movie_bias,
            eligible=eligible,
            unfiltered=served.picks[index],
            movie_major=served.movie_major,
        )
    else:
        picks = served.picks[index]
    result = recommend(
        picks,
        catalog=served.catalog,
        user_embeddings=user_emb,
        user_bias=user_bias,
        movie_major=served.movie_major,
        k=k,
    )
    movie_ids, titles, all_genres = version.movie_ids, version.titles, version.genres
    # Every value below is already a checked Python int/float/str: skip re-validation.
    # (movie_ids is a numpy unicode array: its items are str.)
    return RecommendResponse.model_construct(
        user_id=user_id,
        model_version=served.name,
        num_samples=result.num_samples,
        watched_count=int(version.watch_counts[index]),
        genre_filter=genres,
        recommendations=[
            MovieRecommendation.model_construct(
                movie_id=str(movie_ids[r.movie_index]),
                title=titles[r.movie_index],
                genres=list(all_genres[r.movie_index]),
                count=r.votes,
                share=float(r.share),
                probability=r.probability_mean,
                probability_low=r.probability_low,
                probability_high=r.probability_high,
            )
            for r in result.recommendations
        ],
        genres=[
            GenreCount.model_construct(genre=g.genre, count=g.votes, share=float(g.share))
            for g in result.genres
        ],
        uncertainty=Uncertainty.model_construct(
            entropy_bits=result.uncertainty.entropy_bits,
            distinct_movies=result.uncertainty.distinct_picks,
            top_share=result.uncertainty.top_share,
        ),
        convergence=convergence_note(served),
    )


@router.get(
    "/recommend/{user_id}",
    response_model=RecommendResponse,
    summary="Recommend movies for a user from the posterior",
    description=(
        "For every posterior sample (draws x chains) the movies are ranked by "
        "U.V + u + v and the top-ranked movie the user has not watched is that sample's pick. "
        "The response counts the picks: the top `k` movies with their share of samples and "
        "posterior watch probability (mean and 90% interval), the picks' first-genre "
        "breakdown, and how uncertain the posterior is about the pick. With `genre`, only "
        "movies having at least one of those genres are candidates. `convergence` says "
        "whether the posterior passed the convergence check at publish, with a warning when "
        "it did not (or was published before the check existed)."
    ),
    responses=error_responses(404, 422, 503),
)
async def get_recommendations(
    user_id: UserId,
    served: ServedDep,
    k: Annotated[int, Query(ge=1, le=100, description="movies to return")] = 10,
    genre: Annotated[
        list[Genre] | None,
        Query(description="restrict candidates to movies with any of these genres (repeatable)"),
    ] = None,
) -> RecommendResponse:
    index = lookup_user(served, user_id)
    genres = list(dict.fromkeys(genre or ()))
    if genres:  # a per-request matmul over every sample: keep it off the event loop
        return await run_in_threadpool(_recommend, served, user_id, index, k, genres)
    return _recommend(served, user_id, index, k, genres)
