"""Response models of the explore endpoints (`app.routes.explore`)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.schemas import MovieRef

__all__ = [
    "EntropyScale",
    "GenreShare",
    "MovieMatch",
    "MovieSearchResponse",
    "RandomUserResponse",
    "UserMatch",
    "UserProfileResponse",
    "UserSearchResponse",
]


class UserMatch(BaseModel):
    user_id: str = Field(description="the source's user id, as text", examples=["405"])
    watched_count: int = Field(examples=[737])


class UserSearchResponse(BaseModel):
    """Users whose id starts with `prefix`: shortest ids first, then in text order."""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "model_version": "20261127T074000.000000Z-1a2b",
                    "prefix": "40",
                    "total": 111,
                    "users": [{"user_id": "40", "watched_count": 21}],
                }
            ]
        }
    }

    model_version: str
    prefix: str
    total: int = Field(description="users matching the prefix (the list holds at most `limit`)")
    users: list[UserMatch]


class RandomUserResponse(UserMatch):
    """One user drawn uniformly at random from the served version."""

    model_version: str


class MovieMatch(BaseModel):
    movie_id: str = Field(description="the source's movie id, as text", examples=["1"])
    title: str = Field(examples=["Toy Story (1995)"])
    genres: list[str] = Field(examples=[["Animation", "Children's", "Comedy"]])
    watch_count: int = Field(description="users who watched it")


class MovieSearchResponse(BaseModel):
    """Movies whose title contains `query`: titles starting with it first, then the most
    watched."""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "model_version": "20261127T074000.000000Z-1a2b",
                    "query": "toy story",
                    "total": 2,
                    "movies": [
                        {
                            "movie_id": "1",
                            "title": "Toy Story (1995)",
                            "genres": ["Animation", "Children's", "Comedy"],
                            "watch_count": 2077,
                        }
                    ],
                }
            ]
        }
    }

    model_version: str
    query: str
    total: int = Field(description="movies matching (the list holds at most `limit`)")
    movies: list[MovieMatch]


class GenreShare(BaseModel):
    genre: str = Field(description="first listed genre (as in GET /recommend's `genres`)")
    count: int = Field(description="watched movies with this first genre")
    share: float = Field(description="count / watched_count")


class EntropyScale(BaseModel):
    """The user's pick entropy (unfiltered picks) against its scale."""

    entropy_bits: float = Field(description="entropy of the pick distribution, in bits")
    max_bits: float = Field(
        description="the most possible: log2(min(num_samples, candidates)), in bits"
    )
    candidates: int = Field(description="movies the user has not watched")
    num_samples: int = Field(description="posterior samples (draws x chains)")
    percentile: float = Field(
        description="percentage of users whose entropy is at most this user's (0-100)"
    )


class UserProfileResponse(BaseModel):
    """A user's watch history (one page), its genre shares and the user's entropy scale."""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "user_id": "405",
                    "model_version": "20261127T074000.000000Z-1a2b",
                    "watched_count": 3,
                    "history": [
                        {"movie_id": "1", "title": "Toy Story (1995)", "genres": ["Animation"]}
                    ],
                    "genre_shares": [{"genre": "Animation", "count": 1, "share": 0.333}],
                    "entropy": {
                        "entropy_bits": 3.38,
                        "max_bits": 7.64,
                        "candidates": 3703,
                        "num_samples": 200,
                        "percentile": 71.5,
                    },
                }
            ]
        }
    }

    user_id: str
    model_version: str
    watched_count: int
    history: list[MovieRef] = Field(
        description="watched movies, most watched by all users first, at most `limit`"
    )
    genre_shares: list[GenreShare] = Field(description="all watched movies, largest first")
    entropy: EntropyScale
