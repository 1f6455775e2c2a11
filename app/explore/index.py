"""Per-version explore index: built once when a version loads, cheap to query per request.

- user ids grouped by length and sorted, so an id prefix is a few binary searches and
  numeric ids come out in natural order ("1", "10".."19", "100", ...);
- casefolded titles for substring search;
- every user's pick entropy over the unfiltered picks (the same formula as
  `common.picks`), sorted, so a user's percentile is one binary search.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from common.picks import user_pick_entropy_bits

__all__ = [
    "ExploreIndex",
    "IdMatches",
    "build_explore_index",
    "entropy_percentile",
    "max_entropy_bits",
    "pick_entropies",
    "search_titles",
    "search_user_ids",
]


class ExploreIndex(NamedTuple):
    """Search tables and entropy statistics of one served version (immutable)."""

    ids_by_length: dict[int, tuple[np.ndarray, np.ndarray]]  # length -> (sorted ids, users)
    folded_titles: tuple[str, ...]  # [M] casefolded titles
    entropy_bits: np.ndarray  # float64 [N]: each user's pick entropy (unfiltered picks)
    sorted_entropy: np.ndarray  # float64 [N], ascending


class IdMatches(NamedTuple):
    users: list[int]  # user indices, shortest ids first, then in text order
    total: int  # every user whose id starts with the prefix


def pick_entropies(picks: np.ndarray, *, chunk_users: int = 4096) -> np.ndarray:
    """Each user's pick entropy in bits, float64 [N], from picks [N, K]
    (`common.picks.user_pick_entropy_bits`); a user without any pick counts as 0 here, so
    the percentile table has a value for every user."""
    return np.nan_to_num(user_pick_entropy_bits(picks, chunk_users=chunk_users), nan=0.0)


def max_entropy_bits(num_samples: int, candidates: int) -> float:
    """The most entropy `num_samples` picks among `candidates` movies can have, in bits:
    log2(min(num_samples, candidates)) (all picks distinct, or spread evenly); 0 when
    either is at most 1."""
    top = min(num_samples, candidates)
    return float(np.log2(top)) if top > 1 else 0.0


def entropy_percentile(index: ExploreIndex, entropy_bits: float) -> float:
    """Percentage of users whose entropy is at most `entropy_bits` (the "weak" percentile of
    `scipy.stats.percentileofscore`), 0 to 100. A tiny tolerance absorbs float rounding
    between this table and a per-request recomputation."""
    values = index.sorted_entropy
    if values.size == 0:
        return 0.0
    at_most = np.searchsorted(values, entropy_bits + 1e-9, side="right")
    return float(100.0 * at_most / values.size)


def build_explore_index(
    user_ids: Sequence[str] | np.ndarray, titles: Sequence[str], picks: np.ndarray
) -> ExploreIndex:
    """Build the index of one version from its user ids [N], titles [M] and picks [N, K]."""
    ids = np.asarray([str(u) for u in user_ids], dtype=object)
    lengths = np.fromiter((len(u) for u in ids), dtype=np.int64, count=ids.size)
    by_length: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for length in np.unique(lengths).tolist():
        users = np.flatnonzero(lengths == length)
        texts = np.asarray(ids[users].tolist())  # a unicode array: searchsorted compares text
        order = np.argsort(texts, kind="stable")
        by_length[int(length)] = (texts[order], users[order])
    entropies = pick_entropies(picks)
    return ExploreIndex(
        ids_by_length=by_length,
        folded_titles=tuple(t.casefold() for t in titles),
        entropy_bits=entropies,
        sorted_entropy=np.sort(entropies),
    )


def search_user_ids(index: ExploreIndex, prefix: str, *, limit: int) -> IdMatches:
    """Users whose id starts with `prefix`: up to `limit`, shortest ids first, then by text."""
    found: list[int] = []
    total = 0
    for length in sorted(index.ids_by_length):
        if length < len(prefix):
            continue
        texts, users = index.ids_by_length[length]
        lo = int(np.searchsorted(texts, prefix, side="left"))
        hi = int(np.searchsorted(texts, prefix + "\U0010ffff", side="left"))
        total += hi - lo
        if len(found) < limit:
            found.extend(users[lo : min(hi, lo + limit - len(found))].tolist())
    return IdMatches(found, total)


def search_titles(
    index: ExploreIndex, query: str, *, popularity: np.ndarray, limit: int
) -> tuple[list[int], int]:
    """Movies whose title contains `query` (case-insensitive): up to `limit` movie indices,
    titles starting with it first, then by `popularity` (users who watched it, [M]) and
    index; and how many matched in all."""
    needle = query.casefold().strip()
    hits = [j for j, title in enumerate(index.folded_titles) if needle in title]
    if not hits:
        return [], 0
    movies = np.asarray(hits)
    starts = np.fromiter(
        (index.folded_titles[j].startswith(needle) for j in hits), dtype=bool, count=len(hits)
    )
    order = np.lexsort((movies, -np.asarray(popularity)[movies], ~starts))
    return movies[order][:limit].tolist(), len(hits)
