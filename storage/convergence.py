"""A version's convergence record, its warning, and which version a server should serve.

Training records its verdict as the manifest's `convergence` entry:
`{"converged": bool, "thresholds": {...}, "figures": {...}, "failures": [str, ...]}`.
Versions published before that existed have no entry: "convergence not recorded".

Serve policies: `latest` serves the `latest` pointer; `latest-converged` serves the newest
converged version and, when none converged, falls back to `latest` (flagged as a fallback,
so the server can warn).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

from storage import layout
from storage.manifest import MANIFEST

__all__ = [
    "CONVERGENCE_KEY",
    "SERVE_POLICIES",
    "Convergence",
    "ConvergenceStatus",
    "Selection",
    "ServePolicy",
    "check_record",
    "read_convergence",
    "select_version",
    "version_convergence",
]

CONVERGENCE_KEY = "convergence"
ConvergenceStatus = Literal["converged", "unconverged", "not_recorded"]
ServePolicy = Literal["latest", "latest-converged"]
SERVE_POLICIES: tuple[str, ...] = ("latest", "latest-converged")


class Convergence(NamedTuple):
    """A version's convergence record as read from its manifest."""

    version: str
    status: ConvergenceStatus
    thresholds: dict[str, Any]
    figures: dict[str, Any]
    failures: list[str]

    @property
    def converged(self) -> bool | None:
        """True or False as recorded; None when not recorded."""
        return None if self.status == "not_recorded" else self.status == "converged"

    @property
    def warning(self) -> str | None:
        """What a reader of this version's recommendations must know (None: converged)."""
        if self.status == "converged":
            return None
        if self.status == "not_recorded":
            return (
                f"convergence not recorded: version {self.version} was published before "
                "convergence was checked, so whether its chains converged is unknown and its "
                "pick counts and intervals may not reflect the posterior's uncertainty; "
                "retrain to publish a checked version"
            )
        why = "; ".join(self.failures) or "its diagnostics missed the thresholds"
        return (
            f"unconverged posterior: version {self.version} did not pass the convergence "
            f"check ({why}), so its pick counts and intervals may not reflect the posterior's "
            "uncertainty; train longer (more burn-in and draws) or with more chains"
        )


def check_record(record: Any) -> str | None:
    """Why `record` is not a usable convergence record (None when it is)."""
    if not isinstance(record, Mapping):
        return "it is not a JSON object"
    if not isinstance(record.get("converged"), bool):
        return "its 'converged' is not true or false"
    for key in ("thresholds", "figures"):
        if not isinstance(record.get(key, {}), Mapping):
            return f"its {key!r} is not a JSON object"
    failures = record.get("failures", [])
    if not isinstance(failures, list) or not all(isinstance(f, str) for f in failures):
        return "its 'failures' is not a list of strings"
    return None


def read_convergence(manifest: Mapping[str, Any]) -> Convergence:
    """The convergence record of a parsed manifest; "not_recorded" when it has none (or a
    malformed one: its failures then say so)."""
    version = str(manifest.get("version", "?"))
    record = manifest.get(CONVERGENCE_KEY)
    if record is None:
        return Convergence(version, "not_recorded", {}, {}, [])
    why = check_record(record)
    if why is not None:
        return Convergence(version, "not_recorded", {}, {}, [f"malformed record: {why}"])
    return Convergence(
        version=version,
        status="converged" if record["converged"] else "unconverged",
        thresholds=dict(record.get("thresholds", {})),
        figures=dict(record.get("figures", {})),
        failures=list(record.get("failures", [])),
    )


@functools.lru_cache(maxsize=4096)
def _cached(store: str, version: str) -> Convergence:
    # Versions are immutable once published, so a successful read holds for good; an
    # unreadable manifest raises, and exceptions are not cached.
    path = layout.versions_dir(Path(store)) / version / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(manifest, dict):
        raise ValueError(f"{path} is not a JSON object")
    return read_convergence({**manifest, "version": version})


def version_convergence(store_dir: str | Path, version: str) -> Convergence:
    """The convergence record of one published version (read once, then cached).
    Raises OSError or ValueError when its manifest cannot be read."""
    return _cached(str(Path(store_dir).resolve()), version)


class Selection(NamedTuple):
    """The version a policy picks (None: empty store)."""

    version: str | None
    policy: ServePolicy
    fallback: bool  # latest-converged found no converged version and picked `latest`
    passed_over: list[str]  # newer versions not served because they are not converged

    @property
    def warning(self) -> str | None:
        if not self.fallback:
            return None
        return (
            "no version in the store passed the convergence check, so the newest one is "
            "served (serve policy latest-converged)"
        )


def select_version(store_dir: str | Path, policy: ServePolicy) -> Selection:
    """The version to serve under `policy` (see the module docstring). Versions whose
    manifest cannot be read are skipped."""
    store = Path(store_dir)
    if policy not in SERVE_POLICIES:
        raise ValueError(f"unknown serve policy {policy!r}; use one of {SERVE_POLICIES}")
    latest = layout.current_version(store)
    if policy == "latest" or latest is None:
        return Selection(latest, policy, False, [])
    passed_over: list[str] = []
    for version in reversed(layout.version_ids(store)):
        try:
            record = version_convergence(store, version)
        except (OSError, ValueError):
            continue
        if record.status == "converged":
            return Selection(version, policy, False, passed_over)
        passed_over.append(version)
    return Selection(latest, policy, True, [])
