"""Response bodies (pydantic v2), with the examples shown in the OpenAPI docs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.config import JsonDict

from common.genres import GENRES
from common.ids import MAX_ID_LENGTH

Genre = Literal[GENRES]  # type: ignore[valid-type]
MAX_K = 100_000  # `k` is clamped to the candidates; this only bounds the parameter
MAX_BATCH = 10_000  # the schema's ceiling; SHARDLENS_BATCH_MAX_USERS sets the working limit


class ErrorBody(BaseModel):
    """Every error response: what was wrong and, where it helps, what to do."""

    detail: str = Field(
        examples=["user 999999 is not in posterior version 20261127T074000.000000Z-1a2b"]
    )


class ValidationProblem(BaseModel):
    type: str = Field(description="machine-readable kind, e.g. missing, less_than_equal")
    loc: list[str | int] = Field(description="where: ['query', 'k'], ['body', 'seed'], ...")
    msg: str = Field(description="what is wrong and what to change")
    input: Any = Field(default=None, description="the offending value, when there is one")


class ValidationErrorBody(BaseModel):
    """422, in FastAPI's own shape: `detail` lists every problem."""

    detail: list[ValidationProblem]


class Interval(BaseModel):
    """A central credible interval of the watch probability over posterior samples."""

    level: float = Field(description="probability mass inside the interval (0.9)")
    low: float = Field(description="the (1 - level)/2 quantile over samples")
    high: float = Field(description="the (1 + level)/2 quantile over samples")


class MovieRecommendation(BaseModel):
    movie_id: str = Field(description="the source's movie id, as text")
    title: str
    genres: list[str]
    count: int = Field(
        description="posterior samples whose top candidate this is (0: no sample picked it)"
    )
    share: float = Field(description="count / num_samples")
    probability: float = Field(description="posterior mean of sigmoid(U.V + u + v)")
    interval: Interval = Field(description="90% credible interval of the watch probability")


class GenreCount(BaseModel):
    genre: str = Field(description="first listed genre of the picked movies (the reference's)")
    count: int
    share: float = Field(description="count / num_samples")


class Uncertainty(BaseModel):
    entropy_bits: float | None = Field(
        description="entropy of the pick distribution, in bits; null when no sample had a "
        "candidate (see `note`)"
    )
    distinct_movies: int = Field(description="distinct movies picked across samples")
    top_share: float = Field(description="share of samples picking the most common movie")
    note: str | None = Field(
        default=None, description="why there is no pick distribution (null when there is one)"
    )


class FoldInNote(BaseModel):
    """How a user who is not in the posterior was folded in (`POST /recommend`)."""

    method: Literal["laplace", "prior"] = Field(
        description="laplace: per posterior sample, a Laplace approximation of the new "
        "user's posterior given that sample's movie variables, then one draw; prior: no "
        "watches given, one draw from the prior per sample (cold start)"
    )
    watched: int = Field(description="distinct watched movies folded in")
    cold_start: bool = Field(description="true when nothing was watched: prior predictive")
    prior_scale: float = Field(description="the prior standard deviation of the version")
    newton_steps: int = Field(
        description="Newton steps over all samples, from the pilot's warm start, until every "
        "coordinate of every sample's mode moved less than 0.01 (0 for the prior)"
    )


class ConvergenceNote(BaseModel):
    """Whether the served version passed the convergence check at publish."""

    status: Literal["converged", "unconverged", "not_recorded"] = Field(
        description="not_recorded: published before convergence was checked"
    )
    converged: bool | None = Field(description="as recorded at publish; null: not recorded")
    warning: str | None = Field(
        description="shown to users whenever the version is not known to have converged "
        "(null for a converged version)"
    )


_UNCONVERGED_EXAMPLE: JsonDict = {
    "status": "unconverged",
    "converged": False,
    "warning": "unconverged posterior: version 20261127T074000.000000Z-1a2b did not pass the "
    "convergence check (log-likelihood split R-hat 1.21 > 1.05), so its pick counts and "
    "intervals may not reflect the posterior's uncertainty; train longer (more burn-in and "
    "draws) or with more chains",
}


class ConvergenceReport(ConvergenceNote):
    """The convergence record in full, and how the serve policy picked the version."""

    policy: Literal["latest", "latest-converged"] = Field(description="SHARDLENS_SERVE_POLICY")
    fallback: bool = Field(
        description="latest-converged found no converged version and serves the newest"
    )
    passed_over: list[str] = Field(
        default_factory=list,
        description="newer versions not served because they did not pass the check",
    )
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="what a converged version must reach"
    )
    figures: dict[str, float | None] = Field(
        default_factory=dict, description="the version's figures the thresholds were checked on"
    )
    failures: list[str] = Field(default_factory=list, description="thresholds it missed")


_RECOMMEND_EXAMPLE: JsonDict = {
    "user_id": "1",
    "model_version": "20261127T074000.000000Z-1a2b",
    "num_samples": 1000,
    "watched_count": 53,
    "rank": "picks",
    "k": 1,
    "genre_filter": [],
    "exclude": [],
    "candidates": 3653,
    "recommendations": [
        {
            "movie_id": "2858",
            "title": "American Beauty (1999)",
            "genres": ["Comedy", "Drama"],
            "count": 412,
            "share": 0.412,
            "probability": 0.83,
            "interval": {"level": 0.9, "low": 0.71, "high": 0.92},
        }
    ],
    "genres": [{"genre": "Comedy", "count": 530, "share": 0.53}],
    "uncertainty": {"entropy_bits": 2.1, "distinct_movies": 9, "top_share": 0.412, "note": None},
    "convergence": {"status": "converged", "converged": True, "warning": None},
    "fold_in": None,
}


class RecommendResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_RECOMMEND_EXAMPLE]})

    user_id: str | None = Field(
        description="the source's user id, as text; null for a folded-in user (POST)"
    )
    model_version: str
    num_samples: int = Field(description="posterior samples (draws x chains) that voted")
    watched_count: int
    rank: Literal["picks", "probability"] = Field(description="the ranking asked for")
    k: int = Field(description="movies asked for; `recommendations` has min(k, candidates)")
    genre_filter: list[str] = Field(description="candidate genres; empty means all movies")
    exclude: list[str] = Field(description="movie ids dropped from the candidates")
    candidates: int = Field(
        description="unwatched movies left after the genre filter and the exclusions"
    )
    recommendations: list[MovieRecommendation] = Field(
        description="ranked by `rank`: by pick count then posterior-mean probability "
        "(`picks`), or by posterior-mean probability (`probability`)"
    )
    genres: list[GenreCount] = Field(description="first genres of the picks (picks only)")
    uncertainty: Uncertainty = Field(description="over the picks only")
    convergence: ConvergenceNote = Field(
        description="whether the posterior these picks come from converged; a warning when not"
    )
    fold_in: FoldInNote | None = Field(
        default=None, description="how the user was folded in (POST /recommend); null on GET"
    )


class FoldInRequest(BaseModel):
    """A user who is not in the posterior: the movies they watched, and what to return."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"watched": ["2858", "260", "1196"], "k": 10, "rank": "picks", "genre": ["Comedy"]}
            ]
        },
    )

    watched: list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]] = (
        Field(
            default_factory=list,
            max_length=10000,
            description="movie ids the user watched; empty: cold start (prior predictive)",
        )
    )
    k: int = Field(default=10, ge=1, le=MAX_K, description="movies to return")
    rank: Literal["picks", "probability"] = "picks"
    genre: list[Genre] = Field(
        default_factory=list, max_length=len(GENRES), description="candidate genres (any of)"
    )
    exclude: list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]] = (
        Field(default_factory=list, max_length=10000, description="movie ids to drop")
    )


class BatchRequest(BaseModel):
    """Recommendations for many known users at once."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"user_ids": ["1", "2", "3"], "k": 10, "rank": "picks"}]},
    )

    user_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]] = (
        Field(
            min_length=1,
            max_length=MAX_BATCH,
            description="user ids, answered in this order (at most SHARDLENS_BATCH_MAX_USERS)",
        )
    )
    k: int = Field(default=10, ge=1, le=MAX_K, description="movies to return per user")
    rank: Literal["picks", "probability"] = "picks"


class BatchItem(BaseModel):
    user_id: str
    status: int = Field(description="200, or the status a single request would get (404)")
    result: RecommendResponse | None = Field(description="the GET answer; null on error")
    error: str | None = Field(description="why this id has no answer; null on success")


class BatchResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_version": "20261127T074000.000000Z-1a2b",
                    "results": [
                        {
                            "user_id": "1",
                            "status": 200,
                            "result": _RECOMMEND_EXAMPLE,
                            "error": None,
                        },
                        {
                            "user_id": "999999",
                            "status": 404,
                            "result": None,
                            "error": "user 999999 is not in posterior version "
                            "20261127T074000.000000Z-1a2b; see GET /users",
                        },
                    ],
                }
            ]
        }
    )

    model_version: str
    results: list[BatchItem] = Field(description="one per requested id, in request order")


class MovieRef(BaseModel):
    movie_id: str = Field(description="the source's movie id, as text")
    title: str
    genres: list[str]


class UserResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "1",
                    "model_version": "20261127T074000.000000Z-1a2b",
                    "watched_count": 53,
                    "offset": 0,
                    "limit": 1,
                    "watched": [
                        {"movie_id": "1193", "title": "One Flew Over...", "genres": ["Drama"]}
                    ],
                }
            ]
        }
    )

    user_id: str = Field(description="the source's user id, as text")
    model_version: str
    watched_count: int
    offset: int
    limit: int
    watched: list[MovieRef] = Field(description="watched movies in index order, one page")


class MovieResponse(MovieRef):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "movie_id": "1",
                    "title": "Toy Story (1995)",
                    "genres": ["Animation", "Children", "Comedy"],
                    "model_version": "20261127T074000.000000Z-1a2b",
                    "watch_count": 2077,
                }
            ]
        }
    )

    model_version: str
    watch_count: int | None = Field(description="users who watched it (None if unknown)")


class LoadErrorInfo(BaseModel):
    version: str
    message: str
    at: datetime


class ModelResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_version": "20261127T074000.000000Z-1a2b",
                    "store_dir": "var/store",
                    "loaded_at": "2026-11-27T07:41:00Z",
                    "load_seconds": 14.2,
                    "num_users": 6040,
                    "num_movies": 3706,
                    "latent_dim": 20,
                    "num_draws": 500,
                    "num_chains": 2,
                    "num_samples": 1000,
                    "manifest": {"created_at": "2026-11-27T07:40:00Z"},
                    "diagnostics": {"mean_acceptance": 0.74},
                    "convergence": {
                        **_UNCONVERGED_EXAMPLE,
                        "policy": "latest-converged",
                        "fallback": True,
                        "passed_over": [],
                        "thresholds": {"loglik_rhat": 1.05, "loglik_ess_bulk": 200.0},
                        "figures": {"loglik_rhat": 1.21, "loglik_ess_bulk": 16.3},
                        "failures": ["log-likelihood split R-hat 1.21 > 1.05"],
                    },
                    "last_load_error": None,
                }
            ]
        }
    )

    model_version: str | None
    store_dir: str
    loaded_at: datetime | None = None
    load_seconds: float | None = None
    num_users: int | None = None
    num_movies: int | None = None
    latent_dim: int | None = None
    num_draws: int | None = None
    num_chains: int | None = None
    num_samples: int | None = None
    manifest: dict[str, Any] = Field(default_factory=dict, description="manifest summary")
    diagnostics: dict[str, Any] = Field(default_factory=dict)
    plots: list[str] = Field(
        default_factory=list, description="images stored with the version: GET /model/files/{name}"
    )
    convergence: ConvergenceReport | None = Field(
        default=None, description="the served version's convergence record (null: nothing served)"
    )
    last_load_error: LoadErrorInfo | None = None


class HealthResponse(BaseModel):
    status: str = Field(examples=["ok"])


class ReadyResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ready",
                    "model_version": "20261127T074000.000000Z-1a2b",
                    "convergence": _UNCONVERGED_EXAMPLE,
                }
            ]
        }
    )

    status: str = Field(examples=["ready"])
    model_version: str
    convergence: ConvergenceNote = Field(
        description="ready also serves an unconverged version: this says whether it is one"
    )


class ReloadResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"model_version": "20261127T074000.000000Z-1a2b", "changed": True, "error": None}
            ]
        }
    )

    model_version: str | None = Field(description="the version served after the reload")
    changed: bool = Field(description="whether a new version was swapped in")
    error: str | None = Field(description="why the newest version could not be loaded")


class UserSummary(BaseModel):
    user_id: str = Field(description="the source's user id, as text")
    watched_count: int


class UserListResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_version": "20261127T074000.000000Z-1a2b",
                    "num_users": 6040,
                    "sort": "most_watched",
                    "offset": 0,
                    "limit": 1,
                    "users": [{"user_id": "4169", "watched_count": 2314}],
                }
            ]
        }
    )

    model_version: str
    num_users: int
    sort: str
    offset: int
    limit: int
    users: list[UserSummary]
