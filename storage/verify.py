"""Checking a version against its manifest: presence, size, and sha256 of every file."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from storage import files as F
from storage import fsio
from storage import manifest as mf
from storage.errors import CorruptVersionError, VersionNotFoundError

__all__ = [
    "check_files",
    "corrupt",
    "read_manifest",
]

_HASH_THREADS = min(4, os.cpu_count() or 1)


def read_manifest(path: Path, version: str) -> dict[str, Any]:
    """The parsed, format-checked manifest of the version folder `path`."""
    if not path.is_dir():
        raise VersionNotFoundError(
            f"version {version} is no longer in the store (removed by gc?); "
            "pin versions you use with storage.retention.pin"
        )
    try:
        manifest = json.loads((path / mf.MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _corrupt(version, mf.MANIFEST, "is missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _corrupt(version, mf.MANIFEST, f"cannot be read: {exc}") from None
    why = mf.check(manifest)
    if why is None and manifest["version"] != version:
        why = f"names version {manifest['version']}, not its folder {version}"
    if why is None:
        absent = [name for name in F.REQUIRED if name not in manifest["files"]]
        if absent:
            why = f"does not list the required files {absent}"
    if why is None:
        bad = [name for name in manifest["files"] if F.check_relative_name(name)]
        if bad:
            why = f"lists unsafe file names {bad}"
    if why:
        raise _corrupt(version, mf.MANIFEST, why)
    return manifest


def check_files(path: Path, manifest: dict[str, Any], *, hashes: bool) -> None:
    """Every listed file exists with its recorded size (and sha256 when `hashes`)."""
    version = manifest["version"]
    entries = sorted(manifest["files"].items())
    for name, entry in entries:
        try:
            size = (path / name).stat().st_size
        except FileNotFoundError:
            raise _corrupt(version, name, "is missing") from None
        if size != entry["bytes"]:
            raise _corrupt(
                version,
                name,
                f"has {size} bytes but the manifest records {entry['bytes']} (truncated or altered)",
            )
    if not hashes:
        return
    with ThreadPoolExecutor(_HASH_THREADS) as pool:
        digests = list(pool.map(lambda item: fsio.sha256_file(path / item[0]), entries))
    for (name, entry), digest in zip(entries, digests, strict=True):
        if digest != entry["sha256"]:
            raise _corrupt(
                version,
                name,
                f"fails its checksum (sha256 {digest[:12]}..., manifest "
                f"{entry['sha256'][:12]}...): the file was altered or damaged",
            )


def _corrupt(version: str, name: str, what: str) -> CorruptVersionError:
    return CorruptVersionError(
        f"posterior version {version} is corrupt and was refused: {name} {what}. "
        "Publish a new version (retrain); `python -m storage verify` checks every version.",
        version=version,
        file=name,
    )


def corrupt(version: str, name: str, what: str) -> CorruptVersionError:
    """A `CorruptVersionError` naming `name` (for checks made while loading)."""
    return _corrupt(version, name, what)
