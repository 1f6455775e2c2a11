"""GET /recommend/{user_id}, POST /recommend (fold-in) and POST /recommend/batch."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from app.deps import ServedDep, SettingsDep, lookup_user
from app.http_cache import cache_control, etag_for, fresh, not_modified
from app.http_errors import error_responses, not_modified_response
from app.params import UserId
from app.schemas import (
    MAX_K,
    BatchItem,
    BatchRequest,
    BatchResponse,
    FoldInRequest,
    Genre,
    RecommendResponse,
)
from app.serving.model_state import Served
from app.serving.queries import Query as ScoreQuery
from app.serving.queries import fold_in_user, known_user, scores_samples

router = APIRouter(tags=["recommendations"])

Rank = Literal["picks", "probability"]
_HOW = (
    "For every posterior sample (draws x chains) the movies are ranked by U.V + u + v and "
    "the top-ranked candidate the user has not watched is that sample's pick. `k` is a count: "
    "the answer lists exactly min(k, candidates) movies. `rank=picks` (the reference's view) "
    "orders them by pick count, and the movies no sample picked follow (count 0) by "
    "posterior-mean watch probability; `rank=probability` orders every candidate by "
    "posterior-mean watch probability. Every movie carries its pick count, its posterior-mean "
    "watch probability and that probability's 90% credible interval. The genre breakdown and "
    "`uncertainty` describe the picks only; with no candidate left (a genre filter that "
    "excludes everything), `entropy_bits` is null and `uncertainty.note` says why. `genre` "
    "keeps movies having any of those genres; `exclude` drops movie ids (unknown ids: 422). "
    "`convergence` says whether the posterior passed the convergence check at publish."
)


def movie_indices(served: Served, ids: list[str], where: tuple[str, ...]) -> list[int]:
    """Indices of movie ids (comma-separated values split); 422 naming the unknown ones."""
    flat = [part.strip() for value in ids for part in value.split(",") if part.strip()]
    unique = list(dict.fromkeys(flat))
    found = [served.version.movie_index(m) for m in unique]
    unknown = [m for m, i in zip(unique, found, strict=True) if i is None]
    if unknown:
        shown = ", ".join(unknown[:20]) + (
            f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
        )
        raise RequestValidationError(
            [
                {
                    "type": "unknown_movie",
                    "loc": where,
                    "msg": f"unknown movie ids in version {served.name}: {shown}; see GET /movies/{{id}}",
                    "input": unknown[:20],
                }
            ]
        )
    return [int(i) for i in found if i is not None]


def _id_list(values: list[str] | None) -> list[str]:
    flat = [part.strip() for value in values or () for part in value.split(",") if part.strip()]
    return sorted(set(flat))


@router.get(
    "/recommend/{user_id}",
    response_model=RecommendResponse,
    operation_id="recommend_for_user",
    summary="Recommend movies for a user in the posterior",
    description=_HOW + " Answers carry an ETag (model version + normalised query): send it back in "
    "If-None-Match to get 304 while the version has not changed.",
    responses={304: not_modified_response(), **error_responses(404, 422, 503)},
)
async def recommend_for_user(
    request: Request,
    response: Response,
    user_id: UserId,
    served: ServedDep,
    settings: SettingsDep,
    k: Annotated[
        int, Query(ge=1, le=MAX_K, description="movies to return (a count; at most the candidates)")
    ] = 10,
    rank: Annotated[Rank, Query(description="order: pick count, or watch probability")] = "picks",
    genre: Annotated[
        list[Genre] | None,
        Query(description="restrict candidates to movies with any of these genres (repeatable)"),
    ] = None,
    exclude: Annotated[
        list[Annotated[str, Query(max_length=100_000)]] | None,
        Query(
            description="movie ids to drop from the candidates (repeatable or comma-separated)",
            examples=["2858,260"],
        ),
    ] = None,
) -> RecommendResponse | Response:
    index = lookup_user(served, user_id)
    genres = sorted(set(genre or ()))
    excluded_ids = _id_list(exclude)
    etag = etag_for(served.name, "user", user_id, k, rank, genres, excluded_ids)
    cache = cache_control(settings.poll_interval_s)
    if fresh(request, etag):
        return not_modified(etag, cache)
    excluded = movie_indices(served, excluded_ids, ("query", "exclude"))
    query = ScoreQuery(k=k, rank=rank, genres=genres, exclude=excluded_ids, excluded=excluded)
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = cache
    if scores_samples(served, query):  # a matmul over samples: keep it off the event loop
        return await run_in_threadpool(known_user, served, user_id, index, query)
    return known_user(served, user_id, index, query)


@router.post(
    "/recommend",
    response_model=RecommendResponse,
    operation_id="recommend_by_fold_in",
    summary="Recommend movies for a new user from the movies they watched (fold-in)",
    description=(
        "For someone who is not in the posterior. For every posterior sample, the new user's "
        "(U, u) is drawn from a Laplace approximation of their posterior given that sample's "
        "movie variables and the watched list (a Bayesian logistic regression in D + 1 "
        "dimensions over all movies; prior scale from the version's manifest), then the picks "
        "are counted as for a known user. An empty `watched` list gives the prior predictive "
        "(cold start; `fold_in.cold_start` says so). The same body gives the same answer for "
        "a version (draws are seeded by the version and the watched list). " + _HOW
    ),
    responses=error_responses(413, 422, 503),
)
async def recommend_by_fold_in(body: FoldInRequest, served: ServedDep) -> RecommendResponse:
    watched = movie_indices(served, body.watched, ("body", "watched"))
    excluded_ids = _id_list(body.exclude)
    excluded = movie_indices(served, excluded_ids, ("body", "exclude"))
    query = ScoreQuery(
        k=body.k,
        rank=body.rank,
        genres=sorted(set(body.genre)),
        exclude=excluded_ids,
        excluded=excluded,
    )
    return await run_in_threadpool(fold_in_user, served, sorted(set(watched)), query)


@router.post(
    "/recommend/batch",
    response_model=BatchResponse,
    operation_id="recommend_for_users",
    summary="Recommend movies for many users in the posterior at once",
    description=(
        "One result per id, in request order, each as `GET /recommend/{user_id}?k=&rank=` "
        "would answer it. An unknown id gets a per-item error (status 404), not a failed "
        "batch. At most SHARDLENS_BATCH_MAX_USERS ids (default 1000; the schema's `maxItems` "
        "is that setting) and SHARDLENS_MAX_BODY_BYTES of body (413 beyond)."
    ),
    responses=error_responses(413, 422, 503),
)
async def recommend_for_users(
    body: BatchRequest, served: ServedDep, settings: SettingsDep
) -> BatchResponse:
    if len(body.user_ids) > settings.batch_max_users:
        raise RequestValidationError(
            [
                {
                    "type": "too_long",
                    "loc": ("body", "user_ids"),
                    "msg": f"{len(body.user_ids)} ids, more than SHARDLENS_BATCH_MAX_USERS="
                    f"{settings.batch_max_users}; split the batch",
                    "input": len(body.user_ids),
                }
            ]
        )
    query = ScoreQuery(k=body.k, rank=body.rank, genres=[], exclude=[], excluded=[])

    def run() -> BatchResponse:
        results = []
        for user_id in body.user_ids:
            try:
                index = lookup_user(served, user_id)
            except HTTPException as exc:
                results.append(
                    BatchItem.model_construct(
                        user_id=user_id, status=exc.status_code, result=None, error=exc.detail
                    )
                )
                continue
            result = known_user(served, user_id, index, query)
            results.append(
                BatchItem.model_construct(user_id=user_id, status=200, result=result, error=None)
            )
        return BatchResponse.model_construct(model_version=served.name, results=results)

    return await run_in_threadpool(run)
