"""The files of one dataset, in a folder or a zip archive, and which release they are."""

from __future__ import annotations

import zipfile
from pathlib import Path

from training.data.errors import DataError

__all__ = ["RELEASE_FILES", "Bundle", "detect_release", "open_bundle"]

# Files that identify a release, in the order they are tried.
RELEASE_FILES: dict[str, tuple[str, str]] = {
    "dat": ("ratings.dat", "movies.dat"),  # ml-1m, ml-10m (`::`-separated)
    "csv": ("ratings.csv", "movies.csv"),  # ml-20m, ml-25m, ml-32m, ml-latest(-small)
    "ml-100k": ("u.data", "u.item"),
}


class Bundle:
    """The files of one dataset, in a folder or inside a zip archive (under `prefix`)."""

    def __init__(self, root: Path, *, archive: zipfile.ZipFile | None = None, prefix: str = ""):
        self.root = root
        self.archive = archive
        self.prefix = prefix

    @property
    def name(self) -> str:
        """The dataset's folder name (e.g. 'ml-25m'), or the zip's stem at its top level."""
        if self.archive is not None:
            return self.prefix.rstrip("/").rsplit("/", 1)[-1] or self.root.stem
        return self.root.name

    def describe(self, name: str) -> str:
        if self.archive is not None:
            return f"{self.root}:{self.prefix}{name}"
        return str(self.root / name)

    def exists(self, name: str) -> bool:
        if self.archive is not None:
            return f"{self.prefix}{name}" in self.archive.namelist()
        return (self.root / name).is_file()

    def read(self, name: str) -> bytes:
        if not self.exists(name):
            raise DataError(
                "file not found; a GroupLens dataset needs it (download the dataset again "
                "from grouplens.org if it is incomplete)",
                path=self.describe(name),
            )
        if self.archive is not None:
            return self.archive.read(f"{self.prefix}{name}")
        return (self.root / name).read_bytes()


def detect_release(bundle: Bundle) -> str | None:
    """'ml-1m', 'ml-10m', 'csv' or 'ml-100k' from the files present (None: none of them).
    A `::` release is told by its folder's name (ml-1m; ml-10m or ml-10M100K), else by
    `users.dat`, which only ml-1m has."""
    for kind, markers in RELEASE_FILES.items():
        if any(bundle.exists(m) for m in markers):
            if kind == "dat":
                name = bundle.name.lower()
                if "10m" in name:
                    return "ml-10m"
                if "1m" in name or bundle.exists("users.dat"):
                    return "ml-1m"
                return "ml-10m"
            return kind
    return None


def _zip_prefix(archive: zipfile.ZipFile, marker: str) -> str | None:
    for name in archive.namelist():
        if name == marker or name.endswith("/" + marker):
            return name[: len(name) - len(marker)]
    return None


_EXPECTED = (
    "ml-1m or ml-10m (ratings.dat, movies.dat), ml-20m/25m/32m/latest (ratings.csv, "
    "movies.csv) or ml-100k (u.data, u.item)"
)


def open_bundle(path: Path) -> tuple[Bundle, str, zipfile.ZipFile | None]:
    """The bundle at `path` (a GroupLens zip or folder), its release, and the open archive
    (close it when done; None for a folder). DataError when no release is found."""
    if not path.exists():
        raise DataError(
            "no such file or folder; give the path of a GroupLens .zip or its extracted "
            "folder, or an interactions .csv/.tsv/.parquet file",
            path=path,
        )
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise DataError(
                "not a zip archive or a folder of GroupLens files (interactions files end in "
                ".csv, .tsv or .parquet)",
                path=path,
            )
        archive = zipfile.ZipFile(path)
        for markers in RELEASE_FILES.values():
            for marker in markers:
                prefix = _zip_prefix(archive, marker)
                if prefix is not None:
                    bundle = Bundle(path, archive=archive, prefix=prefix)
                    return bundle, detect_release(bundle) or "", archive
        listing = ", ".join(archive.namelist()[:8]) or "nothing"
        archive.close()
        raise DataError(f"the zip holds no {_EXPECTED}; it holds: {listing}", path=path)
    candidates = [path, *sorted(p for p in path.iterdir() if p.is_dir())]
    for folder in candidates:
        release = detect_release(Bundle(folder))
        if release is not None:
            return Bundle(folder), release, None
    raise DataError(f"the folder holds no {_EXPECTED}", path=path)
