"""GET /explore/...: what the web page needs to find users and movies and to put a user's
uncertainty on a scale. Everything reads the per-version `app.explore.index.ExploreIndex`
built when the version loaded."""

from __future__ import annotations

import secrets
from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Query

from app.deps import ServedDep, lookup_user
from app.explore.index import (
    ExploreIndex,
    entropy_percentile,
    max_entropy_bits,
    search_titles,
    search_user_ids,
)
from app.explore.schemas import (
    EntropyScale,
    GenreShare,
    MovieMatch,
    MovieSearchResponse,
    RandomUserResponse,
    UserMatch,
    UserProfileResponse,
    UserSearchResponse,
)
from app.http_errors import error_responses
from app.params import UserId
from app.serving.model_state import Served
from app.serving.queries import movie_ref

__all__ = ["router"]

router = APIRouter(prefix="/explore", tags=["explore"])


def explore_index(served: Served) -> ExploreIndex:
    """The served version's explore index (built at load time)."""
    index = served.explore
    if index is None:  # only a Served built outside ModelHolder.build lacks it
        raise HTTPException(503, f"version {served.name} has no explore index; reload it")
    return index


@router.get(
    "/users",
    response_model=UserSearchResponse,
    summary="Find users by id prefix",
    description="Users whose id starts with `prefix`, shortest ids first and then in text "
    "order (so numeric ids come out as 4, 40, 41, ..., 400), at most `limit` of them; "
    "`total` counts every match.",
    responses=error_responses(422, 503),
)
async def search_users(
    served: ServedDep,
    prefix: Annotated[
        str, Query(min_length=1, max_length=256, description="id prefix", examples=["40"])
    ],
    limit: Annotated[int, Query(ge=1, le=100, description="users to list")] = 10,
) -> UserSearchResponse:
    matches = search_user_ids(explore_index(served), prefix, limit=limit)
    version = served.version
    return UserSearchResponse(
        model_version=served.name,
        prefix=prefix,
        total=matches.total,
        users=[
            UserMatch(user_id=str(version.user_ids[i]), watched_count=int(version.watch_counts[i]))
            for i in matches.users
        ],
    )


@router.get(
    "/random-user",
    response_model=RandomUserResponse,
    summary="A user drawn at random",
    description="One user of the served version, uniformly at random (a fresh draw per request).",
    responses=error_responses(404, 503),
)
async def random_user(served: ServedDep) -> RandomUserResponse:
    version = served.version
    if version.num_users == 0:
        raise HTTPException(404, f"version {served.name} has no users")
    i = secrets.randbelow(version.num_users)
    return RandomUserResponse(
        model_version=served.name,
        user_id=str(version.user_ids[i]),
        watched_count=int(version.watch_counts[i]),
    )


@router.get(
    "/movies",
    response_model=MovieSearchResponse,
    summary="Find movies by title",
    description="Movies whose title contains `query`, ignoring case: titles that start with "
    "it first, then the most watched; at most `limit`, `total` counts every match.",
    responses=error_responses(422, 503),
)
async def search_movies(
    served: ServedDep,
    query: Annotated[
        str,
        Query(min_length=1, max_length=200, description="part of a title", examples=["toy"]),
    ],
    limit: Annotated[int, Query(ge=1, le=50, description="movies to list")] = 10,
) -> MovieSearchResponse:
    if not query.strip():
        raise HTTPException(422, "query is blank: give part of a title, e.g. ?query=toy")
    version = served.version
    movies, total = search_titles(
        explore_index(served), query, popularity=served.movie_counts, limit=limit
    )
    return MovieSearchResponse(
        model_version=served.name,
        query=query,
        total=total,
        movies=[
            MovieMatch(
                movie_id=str(version.movie_ids[j]),
                title=version.titles[j],
                genres=list(version.genres[j]),
                watch_count=int(served.movie_counts[j]),
            )
            for j in movies
        ],
    )


@router.get(
    "/users/{user_id}",
    response_model=UserProfileResponse,
    summary="A user's watch history, its genre shares and the user's entropy percentile",
    description="`history` lists up to `limit` watched movies, the most watched by all users "
    "first. `genre_shares` counts every watched movie by its first listed genre (as "
    "GET /recommend counts the picks, so the two compare). `entropy` puts the entropy of the "
    "user's unfiltered picks on its scale: the most it could be, log2(min(samples, "
    "unwatched movies)), and the percentage of users whose entropy is at most this user's.",
    responses=error_responses(404, 422, 503),
)
async def user_profile(
    user_id: UserId,
    served: ServedDep,
    limit: Annotated[int, Query(ge=1, le=500, description="history entries to list")] = 20,
) -> UserProfileResponse:
    index = explore_index(served)
    user = lookup_user(served, user_id)
    version = served.version
    watched = np.asarray(version.watched(user), dtype=np.intp)
    popular = watched[np.lexsort((watched, -served.movie_counts[watched]))][:limit]
    codes = np.bincount(
        served.catalog.first_genre_code[watched], minlength=len(served.catalog.genre_names)
    )
    order = np.lexsort((np.arange(codes.size), -codes))
    entropy = float(index.entropy_bits[user])
    candidates = version.num_movies - int(watched.size)
    return UserProfileResponse(
        user_id=user_id,
        model_version=served.name,
        watched_count=int(watched.size),
        history=[movie_ref(served, j) for j in popular.tolist()],
        genre_shares=[
            GenreShare(
                genre=served.catalog.genre_names[g],
                count=int(codes[g]),
                share=float(codes[g] / watched.size),
            )
            for g in order.tolist()
            if codes[g] > 0
        ],
        entropy=EntropyScale(
            entropy_bits=entropy,
            max_bits=max_entropy_bits(version.num_samples, candidates),
            candidates=candidates,
            num_samples=version.num_samples,
            percentile=entropy_percentile(index, entropy),
        ),
    )
