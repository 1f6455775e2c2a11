"""`PosteriorVersion`: one published version, memory-mapped for serving."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from storage import files as F
from storage import layout
from storage.errors import StoreError
from storage.id_arrays import IdLookup
from storage.verify import check_files, corrupt, read_manifest

__all__ = [
    "PosteriorVersion",
    "latest_version",
    "open_posterior",
]


class PosteriorVersion:
    """A verified version. The big sample arrays are read-only memory maps.

    Sample index k = draw * num_chains + chain (0 <= k < num_samples).
    """

    def __init__(self, path: Path, manifest: dict[str, Any]):
        self.path = path
        self.manifest = manifest
        self.version: str = manifest["version"]
        shapes = manifest["shapes"]
        self.num_draws: int = shapes["draws"]
        self.num_chains: int = shapes["chains"]
        self.num_samples: int = self.num_draws * self.num_chains
        self.num_users: int = shapes["users"]
        self.num_movies: int = shapes["movies"]
        self.latent_dim: int = shapes["latent_dim"]
        k, n, m, d = self.num_samples, self.num_users, self.num_movies, self.latent_dim
        self._users = self._array(F.USERS, (n, k, d + 1), np.float32, mmap=True)
        self.movie_embeddings: np.ndarray = self._array(
            F.MOVIE_EMBEDDINGS, (k, m, d), np.float32, mmap=True
        )
        self.movie_bias: np.ndarray = self._array(F.MOVIE_BIAS, (k, m), np.float32, mmap=True)
        # Public ids as text; format 1 stored int64, read as its decimal text.
        self.user_ids: np.ndarray = self._ids(F.USER_IDS, n)
        self.movie_ids: np.ndarray = self._ids(F.MOVIE_IDS, m)
        self.id_kinds: dict[str, str] = dict(
            manifest.get("ids") or {"users": "int", "movies": "int"}
        )
        self._indptr = self._array(F.WATCHED_INDPTR, (n + 1,), np.int64)
        nnz = int(self._indptr[-1])
        self._indices = self._array(F.WATCHED_INDICES, (nnz,), np.int32)
        if np.any(np.diff(self._indptr) < 0) or self._indptr[0] != 0:
            raise corrupt(self.version, F.WATCHED_INDPTR, "is not a valid CSR row pointer")
        self.watch_counts: np.ndarray = np.diff(self._indptr)
        try:
            movies = json.loads((path / F.MOVIES).read_text(encoding="utf-8"))
            self.titles: list[str] = list(movies["titles"])
            self.genres: list[tuple[str, ...]] = [tuple(g) for g in movies["genres"]]
            self.first_genre: list[str] = list(movies["first_genre"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise corrupt(self.version, F.MOVIES, f"cannot be read: {exc}") from None
        if not len(self.titles) == len(self.genres) == len(self.first_genre) == m:
            raise corrupt(self.version, F.MOVIES, f"does not describe {m} movies")
        self.traces: dict[str, np.ndarray] = {
            name.removeprefix(F.TRACES_DIR + "/").removesuffix(".npy"): self._array(name)
            for name in manifest["files"]
            if name.startswith(F.TRACES_DIR + "/")
        }
        self.diagnostics: dict = manifest.get("diagnostics") or {}
        self._user_lookup = IdLookup(self.user_ids)
        self._movie_lookup = IdLookup(self.movie_ids)

    def _ids(self, name: str, count: int) -> np.ndarray:
        array = self._array(name)
        text = array.dtype.kind == "U" and self.manifest.get("format_version", 1) >= 2
        if array.shape != (count,) or not (text or array.dtype == np.int64):
            raise corrupt(
                self.version,
                name,
                f"holds {array.dtype}{list(array.shape)}, expected {count} "
                + ("text ids" if self.manifest.get("format_version", 1) >= 2 else "int64 ids"),
            )
        return array if text else array.astype(str)

    def _array(
        self,
        name: str,
        shape: tuple[int, ...] | None = None,
        dtype: type | None = None,
        *,
        mmap: bool = False,
    ) -> np.ndarray:
        """Load `name`; its header must agree with the manifest (and the expected layout)."""
        entry = self.manifest["files"][name]
        try:
            array = np.load(self.path / name, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise corrupt(self.version, name, f"is not a readable .npy file: {exc}") from None
        recorded = (tuple(entry.get("shape", ())), np.dtype(entry.get("dtype", array.dtype)))
        if (array.shape, array.dtype) != recorded or (
            shape is not None and (array.shape, array.dtype) != (shape, np.dtype(dtype))
        ):
            raise corrupt(
                self.version,
                name,
                f"holds {array.dtype}{list(array.shape)}, expected "
                f"{np.dtype(dtype or recorded[1])}{list(shape or recorded[0])}",
            )
        return array

    def user_index(self, user_id: str) -> int | None:
        """Factorized index of a public user id, its text (None when unknown)."""
        return self._user_lookup(str(user_id))

    def movie_index(self, movie_id: str) -> int | None:
        """Factorized index of a public movie id, its text (None when unknown)."""
        return self._movie_lookup(str(movie_id))

    def _check_user(self, user_index: int) -> int:
        if not 0 <= user_index < self.num_users:
            raise IndexError(f"user index {user_index} is outside [0, {self.num_users})")
        return int(user_index)

    def watched(self, user_index: int) -> np.ndarray:
        """Sorted movie indices the user watched, int32."""
        i = self._check_user(user_index)
        return self._indices[self._indptr[i] : self._indptr[i + 1]]

    def user_samples(self, user_index: int) -> tuple[np.ndarray, np.ndarray]:
        """The user's embedding [S*C, D] and bias [S*C] samples: views of one contiguous
        region of the memory map (one read of (D+1) * S * C floats)."""
        block = self._users[self._check_user(user_index)]
        return block[:, : self.latent_dim], block[:, self.latent_dim]

    def samples(self) -> dict[str, np.ndarray]:
        """All samples in the reference shapes [S, C, ...], materialized in memory."""
        s, c, n, m, d = (
            self.num_draws,
            self.num_chains,
            self.num_users,
            self.num_movies,
            self.latent_dim,
        )
        users = self._users
        return {
            "user_embeddings": np.ascontiguousarray(
                users[:, :, :d].transpose(1, 0, 2).reshape(s, c, n, d)
            ),
            "user_bias": np.ascontiguousarray(users[:, :, d].T.reshape(s, c, n)),
            "movie_embeddings": np.array(self.movie_embeddings).reshape(s, c, m, d),
            "movie_bias": np.array(self.movie_bias).reshape(s, c, m),
        }

    def file(self, name: str) -> Path:
        """Path of an extra file stored with the version (e.g. "plots/trace.png")."""
        relative = f"{F.EXTRA_DIR}/{name}"
        if relative not in self.manifest["files"]:
            available = sorted(
                n.removeprefix(F.EXTRA_DIR + "/")
                for n in self.manifest["files"]
                if n.startswith(F.EXTRA_DIR + "/")
            )
            raise StoreError(
                f"version {self.version} has no file {name!r}; it has {available or 'none'}"
            )
        return self.path / relative

    @property
    def files(self) -> list[str]:
        """Names of the extra files stored with the version."""
        prefix = F.EXTRA_DIR + "/"
        return sorted(
            n.removeprefix(prefix) for n in self.manifest["files"] if n.startswith(prefix)
        )

    def close(self) -> None:
        """Drop this object's references to the memory maps (the OS unmaps them once no view
        is left; views handed out earlier stay valid until they are dropped too)."""
        self._users = self.movie_embeddings = self.movie_bias = None  # type: ignore[assignment]

    def __enter__(self) -> PosteriorVersion:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"PosteriorVersion({self.version!r}, draws={self.num_draws}, chains={self.num_chains}, "
            f"users={self.num_users}, movies={self.num_movies}, latent_dim={self.latent_dim})"
        )


def open_posterior(
    store_dir: str | Path, version: str = "latest", *, verify: bool = True
) -> PosteriorVersion:
    """Open a version ("latest" or an id). Always checks the manifest and file sizes;
    `verify=True` also checks every file's sha256 (about 1 s per GB)."""
    store = Path(store_dir)
    resolved = layout.resolve(store, version)
    path = layout.versions_dir(store) / resolved
    manifest = read_manifest(path, resolved)
    check_files(path, manifest, hashes=verify)
    return PosteriorVersion(path, manifest)


def latest_version(store_dir: str | Path) -> str | None:
    """The id `latest` points to (None for an empty store)."""
    return layout.current_version(Path(store_dir))
