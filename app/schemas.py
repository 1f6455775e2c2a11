"""Response bodies (pydantic v2), with the examples shown in the OpenAPI docs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict


class ErrorBody(BaseModel):
    """Every error response: what was wrong and, where it helps, what to do."""

    detail: str = Field(examples=["user 999999 is not in posterior version 20261127T0740-1a2b"])


class ValidationErrorBody(BaseModel):
    """422: the parameters that failed validation, one message each."""

    detail: str = Field(examples=["query.k: Input should be less than or equal to 100 (got 500)"])
    errors: list[dict[str, Any]] = Field(default_factory=list)


class MovieRecommendation(BaseModel):
    movie_id: str = Field(description="the source's movie id, as text")
    title: str
    genres: list[str]
    count: int = Field(description="posterior samples whose top unwatched movie this is")
    share: float = Field(description="count / num_samples")
    probability: float = Field(description="posterior mean of sigmoid(U.V + u + v)")
    probability_low: float = Field(description="5th percentile over samples (90% interval)")
    probability_high: float = Field(description="95th percentile over samples (90% interval)")


class GenreCount(BaseModel):
    genre: str = Field(description="first listed genre of the picked movies (the reference's)")
    count: int
    share: float = Field(description="count / num_samples")


class Uncertainty(BaseModel):
    entropy_bits: float = Field(description="entropy of the pick distribution, in bits")
    distinct_movies: int = Field(description="distinct movies picked across samples")
    top_share: float = Field(description="share of samples picking the most common movie")


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
    "warning": "unconverged posterior: version 20261127T074000Z-1a2b3c4d did not pass the "
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
    "model_version": "20261127T074000Z-1a2b3c4d",
    "num_samples": 1000,
    "watched_count": 53,
    "genre_filter": [],
    "recommendations": [
        {
            "movie_id": "2858",
            "title": "American Beauty (1999)",
            "genres": ["Comedy", "Drama"],
            "count": 412,
            "share": 0.412,
            "probability": 0.83,
            "probability_low": 0.71,
            "probability_high": 0.92,
        }
    ],
    "genres": [{"genre": "Comedy", "count": 530, "share": 0.53}],
    "uncertainty": {"entropy_bits": 2.1, "distinct_movies": 9, "top_share": 0.412},
    "convergence": {"status": "converged", "converged": True, "warning": None},
}


class RecommendResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_RECOMMEND_EXAMPLE]})

    user_id: str = Field(description="the source's user id, as text")
    model_version: str
    num_samples: int = Field(description="posterior samples (draws x chains) that voted")
    watched_count: int
    genre_filter: list[str] = Field(description="candidate genres; empty means all movies")
    recommendations: list[MovieRecommendation]
    genres: list[GenreCount]
    uncertainty: Uncertainty
    convergence: ConvergenceNote = Field(
        description="whether the posterior these picks come from converged; a warning when not"
    )


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
                    "model_version": "20261127T074000Z-1a2b3c4d",
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
                    "model_version": "20261127T074000Z-1a2b3c4d",
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
                    "model_version": "20261127T074000Z-1a2b3c4d",
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
                    "model_version": "20261127T074000Z-1a2b3c4d",
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
                {"model_version": "20261127T074000Z-1a2b3c4d", "changed": True, "error": None}
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
                    "model_version": "20261127T074000Z-1a2b3c4d",
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
