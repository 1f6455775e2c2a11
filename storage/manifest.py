"""`manifest.json`: what a version holds, where it came from, and every file's checksum."""

from __future__ import annotations

import functools
import json
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "READABLE_VERSIONS",
    "array_entry",
    "check",
    "code_version",
    "dumps",
    "file_entry",
]

FORMAT = "shardlens-posterior"
# 2: ids are stored as text (`<U` arrays) with their kind in the manifest's "ids";
# 1: int64 ids. Both are read.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"


@functools.cache
def code_version() -> dict[str, Any]:
    """The package version and, when this is a git checkout, the commit (None otherwise)."""
    package: str | None
    try:
        package = metadata.version("shardlens")
    except metadata.PackageNotFoundError:
        package = _pyproject_version()
    commit = None
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if out.returncode == 0:
            commit = out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"package": "shardlens", "version": package, "git_commit": commit}


def _pyproject_version() -> str | None:
    path = Path(__file__).resolve().parents[1] / "pyproject.toml"
    try:
        import tomllib

        return tomllib.loads(path.read_text())["project"]["version"]
    except (OSError, KeyError, ValueError):
        return None


def array_entry(array_shape: tuple[int, ...], dtype: np.dtype, sha256: str, size: int) -> dict:
    return {
        "kind": "array",
        "shape": list(array_shape),
        "dtype": np.dtype(dtype).str,
        "bytes": size,
        "sha256": sha256,
    }


def file_entry(sha256: str, size: int) -> dict:
    return {"kind": "file", "bytes": size, "sha256": sha256}


def dumps(manifest: Mapping[str, Any]) -> str:
    return json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False) + "\n"


def check(manifest: Any) -> str | None:
    """Why `manifest` is not a usable manifest of this format (None when it is)."""
    if not isinstance(manifest, dict):
        return "it is not a JSON object"
    if manifest.get("format") != FORMAT:
        return f"format is {manifest.get('format')!r}, expected {FORMAT!r}"
    if manifest.get("format_version") not in READABLE_VERSIONS:
        return (
            f"format_version {manifest.get('format_version')!r} is not supported "
            f"(this code reads {', '.join(map(str, READABLE_VERSIONS))}); upgrade shardlens "
            "or retrain"
        )
    for key in ("version", "shapes", "files", "data", "config", "created_at"):
        if key not in manifest:
            return f"it lacks {key!r}"
    files = manifest["files"]
    if not isinstance(files, dict) or not all(
        isinstance(e, dict) and isinstance(e.get("sha256"), str) and isinstance(e.get("bytes"), int)
        for e in files.values()
    ):
        return "its 'files' table is malformed"
    return None
