"""GET /users/{user_id} and GET /movies/{movie_id}."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Query

from app.deps import ServedDep, lookup_user
from app.http_errors import error_responses
from app.params import MovieId, UserId
from app.schemas import MovieResponse, UserListResponse, UserResponse, UserSummary
from app.serving.queries import movie_ref

router = APIRouter(tags=["catalog"])


@router.get(
    "/users/{user_id}",
    response_model=UserResponse,
    summary="A user's watch count and watched movies (paged)",
    responses=error_responses(404, 422, 503),
)
async def get_user(
    user_id: UserId,
    served: ServedDep,
    offset: Annotated[int, Query(ge=0, le=10**9, description="first movie to list")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="movies per page")] = 50,
) -> UserResponse:
    index = lookup_user(served, user_id)
    version = served.version
    watched = version.watched(index)
    page = watched[offset : offset + limit]
    return UserResponse(
        user_id=user_id,
        model_version=served.name,
        watched_count=int(watched.size),
        offset=offset,
        limit=limit,
        watched=[movie_ref(served, j) for j in page.tolist()],
    )


@router.get(
    "/movies/{movie_id}",
    response_model=MovieResponse,
    summary="A movie's title, genres and watch count",
    responses=error_responses(404, 422, 503),
)
async def get_movie(
    movie_id: MovieId,
    served: ServedDep,
) -> MovieResponse:
    version = served.version
    index = version.movie_index(movie_id)
    if index is None:
        raise HTTPException(
            404, f"movie {movie_id} is not in posterior version {served.name}; see GET /model"
        )
    return MovieResponse(
        movie_id=movie_id,
        title=version.titles[index],
        genres=list(version.genres[index]),
        model_version=served.name,
        watch_count=int(served.movie_counts[index]),
    )


@router.get(
    "/users",
    response_model=UserListResponse,
    summary="Users ordered by how many movies they watched (paged)",
    responses=error_responses(422, 503),
)
async def list_users(
    served: ServedDep,
    sort: Annotated[Literal["most_watched", "least_watched"], Query()] = "most_watched",
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> UserListResponse:
    version = served.version
    counts = np.asarray(version.watch_counts)
    key = -counts if sort == "most_watched" else counts
    order = np.argsort(key, kind="stable")[offset : offset + limit]
    return UserListResponse(
        model_version=served.name,
        num_users=version.num_users,
        sort=sort,
        offset=offset,
        limit=limit,
        users=[
            UserSummary(user_id=str(version.user_ids[i]), watched_count=int(counts[i]))
            for i in order.tolist()
        ],
    )
