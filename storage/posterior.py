"""The posterior store: versioned, checksummed, atomically published posterior samples.

See `storage.layout` for the folder structure and `storage.files` for a version's files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from storage import layout
from storage.convergence import read_convergence
from storage.errors import (
    CorruptVersionError,
    NoPosteriorError,
    StoreError,
    VersionNotFoundError,
)
from storage.files import SAMPLE_NAMES
from storage.layout import default_store_dir
from storage.manifest import MANIFEST
from storage.publish import publish_posterior
from storage.retention import Pin, gc, live_pins, pin, unpin
from storage.version import PosteriorVersion, latest_version, open_posterior

__all__ = [
    "SAMPLE_NAMES",
    "CorruptVersionError",
    "NoPosteriorError",
    "Pin",
    "PosteriorVersion",
    "StoreError",
    "VersionInfo",
    "VersionNotFoundError",
    "default_store_dir",
    "gc",
    "latest_version",
    "list_versions",
    "open_posterior",
    "pin",
    "publish_posterior",
    "unpin",
]


class VersionInfo(NamedTuple):
    """A version as listed (from its manifest; no checksums are computed)."""

    version: str
    path: Path
    created_at: str | None
    is_latest: bool
    pins: int
    num_draws: int | None
    num_chains: int | None
    num_users: int | None
    num_movies: int | None
    latent_dim: int | None
    size_bytes: int
    data_source: str | None
    error: str | None  # why the manifest cannot be read (None when it can)
    converged: bool | None = None  # as recorded at publish; None: not recorded


def list_versions(store_dir: str | Path) -> list[VersionInfo]:
    """Every complete version, oldest first. Temp folders of publishers are never listed."""
    store = Path(store_dir)
    current = layout.current_version(store)
    pins = live_pins(store)
    infos = []
    for version in layout.version_ids(store):
        path = layout.versions_dir(store) / version
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
            shapes, error = manifest["shapes"], None
            size = sum(int(e["bytes"]) for e in manifest["files"].values())
        except (OSError, ValueError, KeyError, TypeError) as exc:
            manifest, shapes, size = {}, {}, 0
            error = f"{MANIFEST} cannot be read: {exc}"
        infos.append(
            VersionInfo(
                version=version,
                path=path,
                created_at=manifest.get("created_at"),
                is_latest=version == current,
                pins=pins.get(version, 0),
                num_draws=shapes.get("draws"),
                num_chains=shapes.get("chains"),
                num_users=shapes.get("users"),
                num_movies=shapes.get("movies"),
                latent_dim=shapes.get("latent_dim"),
                size_bytes=size,
                data_source=(manifest.get("data") or {}).get("source"),
                error=error,
                converged=read_convergence({**manifest, "version": version}).converged,
            )
        )
    return infos
