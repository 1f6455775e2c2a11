"""The data-source grammar both sides of a training job share: named sources, the prefixes
of built-in sources, and the `synthetic:` options. Plain Python; the readers live in
`training.data`."""

from __future__ import annotations

__all__ = [
    "MOVIELENS_RELEASES",
    "NAMED_PREFIXES",
    "NAMED_SOURCES",
    "SYNTHETIC_KEYS",
    "SourceError",
    "check_synthetic",
    "is_named",
    "parse_synthetic_options",
    "synthetic_size_problem",
]

MOVIELENS_RELEASES = (
    "ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", "ml-latest", "ml-latest-small",
)  # fmt: skip
NAMED_SOURCES = ("synthetic", *MOVIELENS_RELEASES)
# Sources named by a prefix and a non-empty rest: `synthetic:users=...`, `tfds:movielens/1m-ratings`.
NAMED_PREFIXES = ("synthetic:", "tfds:movielens/")

# `synthetic:` option -> field of `training.data.SyntheticSpec`.
SYNTHETIC_KEYS = {
    "users": "num_users",
    "movies": "num_movies",
    "dim": "latent_dim",
    "seed": "seed",
}


class SourceError(ValueError):
    """A source description does not follow the grammar; the message says what to write."""


def is_named(source: str) -> bool:
    """Whether `source` names a built-in source (not a path): a named source, or a known
    prefix followed by something."""
    return source in NAMED_SOURCES or any(
        source.startswith(p) and len(source) > len(p) for p in NAMED_PREFIXES
    )


def parse_synthetic_options(source: str) -> dict[str, int]:
    """`synthetic` or `synthetic:users=N,movies=M,dim=D,seed=S` -> the given options as
    `SyntheticSpec` field names (`num_users`, ...); SourceError on an unknown key or a
    value that is not an integer."""
    _, _, options = source.partition(":")
    values: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in options.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in SYNTHETIC_KEYS:
            raise SourceError(
                f"bad synthetic option {item!r}; use synthetic:users=N,movies=M,dim=D,seed=S"
            )
        try:
            values[SYNTHETIC_KEYS[key]] = int(value)
        except ValueError:
            raise SourceError(f"synthetic option {key} must be an integer, got {value!r}") from None
    return values


def synthetic_size_problem(*, num_users: int, num_movies: int, latent_dim: int) -> str | None:
    """What is wrong with these synthetic sizes, or None."""
    if num_users < 1 or num_movies < 1:
        return "synthetic data needs at least one user and one movie"
    if latent_dim < 1:
        return "synthetic latent_dim must be at least 1"
    return None


def check_synthetic(source: str) -> None:
    """SourceError unless `source` is a well-formed `synthetic[:...]` with usable sizes."""
    values = parse_synthetic_options(source)
    problem = synthetic_size_problem(
        num_users=values.get("num_users", 1),
        num_movies=values.get("num_movies", 1),
        latent_dim=values.get("latent_dim", 1),
    )
    if problem:
        raise SourceError(problem)
