"""The served posterior: load, verify, precompute, then swap one reference atomically.

Modelled on TF Serving's availability-preserving policy: a new version is loaded next to the
served one and swapped in only once it is ready, so there is never a moment without a model.
Requests read `holder.current` once and keep that `Served` object until they finish, so
in-flight requests complete on the old version while new ones get the new version. The old
version is never closed explicitly: its memory maps are released when the last request that
holds it lets go. A version that fails to load is logged, recorded in `last_error` (shown by
`GET /model`) and skipped until the pick moves again or a reload is forced; the old one keeps
serving.

Which version is picked is the serve policy's choice (`storage.convergence.select_version`):
`latest`, or `latest-converged` (the default: the newest version whose manifest records that
it converged, falling back to `latest` with a warning when none did).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import math
import mmap
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from app.explore.index import ExploreIndex, build_explore_index  # explore hook (issue 15)
from app.serving.picks_cache import cache_key, cached_array, prune
from app.serving.recommend import (
    Catalog,
    UserScores,
    build_catalog,
    movie_major_samples,
    pick_dtype,
    precompute_user_scores,
)
from common.foldin import FoldInLayout, fold_in_layout
from storage.convergence import (
    Convergence,
    Selection,
    ServePolicy,
    read_convergence,
    select_version,
)
from storage.posterior import Pin, list_versions, open_posterior, pin

log = logging.getLogger("shardlens.serve")
# Pin writes failing with these mean the store cannot be written, not that the version is bad.
_UNWRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT})


class ModelLoadError(RuntimeError):
    """A posterior version could not be served (unreadable, corrupt or inconsistent)."""


@dataclass(frozen=True, eq=False)
class Served:
    """One loaded version with everything precomputed for it (immutable once built)."""

    version: Any  # storage.posterior.PosteriorVersion
    picks: np.ndarray  # [N, S*C] unfiltered pick per user and sample
    mean_probability: np.ndarray  # float32 [N, M] posterior-mean watch probabilities
    movie_counts: np.ndarray  # [M] users who watched each movie
    genre_picks: np.ndarray | None  # [N, G, S*C] picks within each catalog.filter_genres
    movie_major: np.ndarray  # [M, S*C, D+1]: embedding then bias, one movie contiguous
    fold_in: FoldInLayout  # per-sample X^T [S*C, D+1, M] for POST /recommend (311 MB at ml-1m)
    catalog: Catalog
    loaded_at: datetime
    load_seconds: float
    convergence: Convergence  # as recorded in the manifest
    prior_scale: float  # the model's prior standard deviation (fold-in), from the manifest
    selection: Selection | None = None  # how the serve policy picked it (set at the swap)
    explore: ExploreIndex | None = None  # explore hook (issue 15): search + entropy table

    @property
    def name(self) -> str:
        return str(self.version.version)

    @property
    def warning(self) -> str | None:
        """The convergence warning every answer about this version carries (None when it
        converged), plus the fallback note when no converged version could be served."""
        notes = [self.convergence.warning, self.selection.warning if self.selection else None]
        text = "; ".join(n for n in notes if n)
        return text or None


class LoadFailure(NamedTuple):
    version: str
    message: str
    at: datetime


class ReloadOutcome(NamedTuple):
    served_version: str | None
    changed: bool
    error: str | None


def release_pages(array: Any) -> None:
    """Drop this process's mapping of a memory-mapped array's pages (they stay in the page
    cache and fault back in on the next read), so resident memory only counts what
    requests actually read. A no-op for anything but a `np.memmap`."""
    handle = getattr(array, "_mmap", None)
    if handle is not None and hasattr(handle, "madvise"):
        with contextlib.suppress(OSError, ValueError):
            handle.madvise(mmap.MADV_DONTNEED)


def _present(array: np.ndarray | None) -> np.ndarray:
    if array is None:
        raise AssertionError("genre picks were asked for but not computed")
    return array


def prior_scale(manifest: dict[str, Any]) -> float:
    """The prior standard deviation the version was trained with (`config.prior_scale`);
    1.0, the training default, for versions whose config does not record it."""
    value = (manifest.get("config") or {}).get("prior_scale", 1.0)
    try:
        scale = float(value)
    except (TypeError, ValueError):
        raise ModelLoadError(f"config.prior_scale is not a number: {value!r}") from None
    if not (np.isfinite(scale) and scale > 0):
        raise ModelLoadError(f"config.prior_scale must be positive, got {scale}")
    return scale


def check_version(version: Any) -> None:
    """Raise `ModelLoadError` unless the version's arrays agree with its metadata."""
    k, m, d = version.num_samples, version.num_movies, version.latent_dim
    problems = []
    if version.movie_embeddings.shape != (k, m, d):
        problems.append(f"movie_embeddings has shape {version.movie_embeddings.shape}")
    if version.movie_bias.shape != (k, m):
        problems.append(f"movie_bias has shape {version.movie_bias.shape}")
    if len(version.user_ids) != version.num_users or len(version.movie_ids) != m:
        problems.append("id tables do not match num_users/num_movies")
    if len(version.titles) != m or len(version.genres) != m:
        problems.append("titles/genres do not have one entry per movie")
    if version.num_users and version.user_samples(0)[0].shape != (k, d):
        problems.append("user samples do not have shape [num_samples, latent_dim]")
    if not problems and not (
        np.isfinite(version.movie_embeddings).all() and np.isfinite(version.movie_bias).all()
    ):
        problems.append("movie samples contain NaN or infinity")
    if problems:
        raise ModelLoadError(
            f"version {version.version} is inconsistent: {'; '.join(problems)}; "
            "republish it or publish a new version"
        )


class ModelHolder:
    """Holds the served version; loads new ones in the caller's (background) thread."""

    def __init__(
        self,
        store_dir: Path,
        *,
        chunk_users: int = 256,
        cache_dir: Path | None = None,
        policy: ServePolicy = "latest-converged",
        genre_picks_max_bytes: int = 512 * 2**20,
    ):
        self.store_dir = Path(store_dir)
        self.chunk_users = chunk_users
        self.genre_picks_max_bytes = genre_picks_max_bytes
        self.cache_dir = cache_dir
        self.policy: ServePolicy = policy
        self.selection: Selection | None = None  # the serve policy's latest pick
        self._current: Served | None = None
        self._pin: Pin | None = None  # keeps `gc` from deleting the served version
        self._load_lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self.last_error: LoadFailure | None = None
        self._failed_version: str | None = None
        self.cache_hits = 0  # precomputed arrays read from the cache (for /metrics)
        self.cache_misses = 0  # ... and computed

    @property
    def current(self) -> Served | None:
        """The served version; read it once per request and keep the reference."""
        return self._current

    def build(self, version_name: str) -> Served:
        """Open, verify and precompute one version (slow; touches no served state)."""
        started = time.perf_counter()
        try:
            version = open_posterior(self.store_dir, version_name, verify=True)
        except Exception as exc:  # storage errors, OS errors, bad manifests: all unservable
            raise ModelLoadError(f"cannot open version {version_name}: {exc}") from exc
        check_version(version)
        movie_embeddings = np.asarray(version.movie_embeddings)
        movie_bias = np.asarray(version.movie_bias)
        catalog = build_catalog(version.genres)
        dtype = pick_dtype(version.num_movies)
        genre_shape = (version.num_users, len(catalog.filter_genres), version.num_samples)
        with_genres = 0 < math.prod(genre_shape) * dtype.itemsize <= self.genre_picks_max_bytes

        computed: list[UserScores] = []
        misses: set[str] = set()

        def scores(kind: str) -> UserScores:
            misses.add(kind)
            if not computed:  # one pass computes both arrays
                computed.append(
                    precompute_user_scores(
                        num_users=version.num_users,
                        user_samples=version.user_samples,
                        watched=version.watched,
                        movie_embeddings=movie_embeddings,
                        movie_bias=movie_bias,
                        genre_members=catalog.genre_members() if with_genres else (),
                        chunk_users=self.chunk_users,
                        should_stop=self._stop.is_set,
                    )
                )
            return computed[0]

        def movie_major_for(kind: str) -> np.ndarray:
            misses.add(kind)
            return movie_major_samples(movie_embeddings, movie_bias)

        try:
            key = cache_key(version.manifest)
            picks = cached_array(
                self.cache_dir,
                "picks",
                key,
                shape=(version.num_users, version.num_samples),
                dtype=dtype,
                compute=lambda: scores("picks").picks,
            )
            genre_picks = None
            if with_genres:
                genre_picks = cached_array(
                    self.cache_dir,
                    "genres",
                    key,
                    shape=genre_shape,
                    dtype=dtype,
                    compute=lambda: _present(scores("genres").genre_picks),
                )
            mean_probability = cached_array(
                self.cache_dir,
                "means",
                key,
                shape=(version.num_users, version.num_movies),
                dtype=np.dtype(np.float32),
                compute=lambda: scores("means").mean_probability,
            )
            movie_major = cached_array(
                self.cache_dir,
                "movies",
                key,
                shape=(version.num_movies, version.num_samples, version.latent_dim + 1),
                dtype=np.dtype(np.float32),
                compute=lambda: movie_major_for("movies"),
            )
        except InterruptedError:
            raise
        except Exception as exc:
            raise ModelLoadError(f"cannot score version {version.version}: {exc}") from exc
        computed.clear()
        # Sample-major and transposed, for the fold-in's per-sample matrix products; built
        # from the samples before their pages are released, not cached on disk.
        fold_in = fold_in_layout(movie_embeddings, movie_bias)
        self.cache_misses += len(misses)
        self.cache_hits += (4 if with_genres else 3) - len(misses)
        # The precomputation read every sample; requests read a few users' rows and movies.
        mapped = [version.movie_embeddings, version.movie_bias]
        if version.num_users:
            mapped.append(version.user_samples(0)[0])
        for array in mapped:
            release_pages(array)
        watched = [version.watched(i) for i in range(version.num_users)]
        movie_counts = np.bincount(
            np.concatenate(watched).astype(np.intp) if watched else np.empty(0, np.intp),
            minlength=version.num_movies,
        )
        return Served(
            version=version,
            picks=picks,
            mean_probability=mean_probability,
            genre_picks=genre_picks,
            movie_counts=movie_counts,
            movie_major=movie_major,
            fold_in=fold_in,
            catalog=catalog,
            loaded_at=datetime.now(UTC),
            load_seconds=time.perf_counter() - started,
            convergence=read_convergence(version.manifest),
            prior_scale=prior_scale(version.manifest),
            # explore hook (issue 15): id/title search tables and every user's entropy
            explore=build_explore_index(version.user_ids, version.titles, picks),
        )

    def refresh(self, *, force: bool = False) -> ReloadOutcome:
        """Serve the version the serve policy picks (`latest`, or the newest converged one)
        if it differs from the served version.

        A version that failed before is retried only with `force`.
        """
        with self._load_lock:
            current = self._current
            try:
                selection = select_version(self.store_dir, self.policy)
            except Exception as exc:
                return self._record_failure("latest", f"cannot read the store: {exc}", current)
            self.selection = selection
            target = selection.version
            if target is None or (current is not None and current.name == target):
                return ReloadOutcome(current.name if current else None, False, None)
            if target == self._failed_version and not force:
                return ReloadOutcome(current.name if current else None, False, None)
            log.info("loading posterior version %s from %s", target, self.store_dir)
            try:
                handle: Pin | None = pin(self.store_dir, target)
            except OSError as exc:
                if exc.errno not in _UNWRITABLE:
                    return self._record_failure(
                        target, f"cannot pin version {target}: {exc}", current
                    )
                # A read-only or full store can still be served; `gc` cannot then know
                # this process uses the version.
                log.warning("serving %s unpinned: cannot write its pin (%s)", target, exc)
                handle = None
            except Exception as exc:
                return self._record_failure(target, f"cannot pin version {target}: {exc}", current)
            try:
                served = self.build(target)
            except BaseException as exc:
                if handle is not None:
                    handle.release()
                if isinstance(exc, ModelLoadError):
                    return self._record_failure(target, str(exc), current)
                raise
            served = dataclasses.replace(served, selection=selection)
            self._current = served  # the atomic swap: one reference assignment
            old_pin, self._pin = self._pin, handle
            if old_pin is not None:
                old_pin.release()
            self._failed_version = None
            self._prune_cache()
            log.info("serving posterior version %s (loaded in %.2f s)", target, served.load_seconds)
            if served.warning:
                log.warning("%s", served.warning)
            return ReloadOutcome(served.name, True, None)

    def _prune_cache(self) -> None:
        """Drop cached picks of versions that left the store (best effort)."""
        if self.cache_dir is None:
            return
        try:
            present = {info.version for info in list_versions(self.store_dir)}
        except Exception:
            return
        prune(self.cache_dir, present)

    def _record_failure(self, target: str, message: str, current: Served | None) -> ReloadOutcome:
        log.error("%s; still serving %s", message, current.name if current else "nothing")
        self.last_error = LoadFailure(target, message, datetime.now(UTC))
        self._failed_version = target
        return ReloadOutcome(current.name if current else None, False, message)

    def start_polling(self, interval_s: float) -> None:
        """Check `latest` every `interval_s` seconds in a daemon thread (0 disables)."""
        if interval_s <= 0 or self._poller is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.refresh()
                except InterruptedError:
                    return
                except Exception:  # never let the poller die silently
                    log.exception("posterior poll failed")

        self._poller = threading.Thread(target=loop, name="posterior-poller", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        """Stop polling and any precomputation in progress."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=10)
            self._poller = None
        with self._load_lock:
            if self._pin is not None:
                self._pin.release()
                self._pin = None
