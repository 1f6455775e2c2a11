"""Publishing a version: stage it in a temp folder (`storage.staging`), then, under the store
lock, name it, write its manifest, rename it into place and move `latest`."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from common.jsonable import jsonable
from storage import fsio, layout
from storage import manifest as mf
from storage.convergence import CONVERGENCE_KEY, check_record
from storage.errors import StoreError
from storage.id_arrays import id_kind, ids_as_text
from storage.retention import gc
from storage.staging import (
    FittedData,
    Shapes,
    VersionWriter,
    check_extras,
    check_samples,
    write_payload,
)

__all__ = ["publish_posterior"]

log = logging.getLogger("shardlens.storage")


def publish_posterior(
    store_dir: str | Path,
    *,
    samples: Mapping[str, np.ndarray],
    data: FittedData,
    config: Mapping[str, Any],
    traces: Mapping[str, np.ndarray] = {},
    diagnostics: Mapping[str, Any] = {},
    files: Mapping[str, bytes] = {},
    convergence: Mapping[str, Any] | None = None,
) -> str:
    """Publish a posterior as a new version and point `latest` at it; returns its id.

    `convergence` is the run's convergence verdict, recorded as the manifest's
    `convergence` entry: a mapping with a bool `converged` (and the thresholds and figures
    it was checked against). Without it the version has no record and is served as
    "convergence not recorded" (see `storage.convergence`).

    Readers never see a partial version: everything is written and fsync'd in a temp folder
    that is renamed into place under the store lock, and only then does `latest` move.
    Old versions are then collected (`storage.retention.gc`, `SHARDLENS_KEEP_VERSIONS`).
    """
    store = Path(store_dir)
    arrays, shapes = check_samples(samples, data)
    try:
        ids_as_text(data.user_ids, what="user")
        ids_as_text(data.movie_ids, what="movie")
    except ValueError as exc:
        raise StoreError(str(exc)) from None
    trace_arrays = check_extras(traces, files)
    try:
        config_json = jsonable(config)
        diagnostics_json = jsonable(diagnostics)
        convergence_json = None if convergence is None else jsonable(convergence)
    except TypeError as exc:
        raise StoreError(f"config, diagnostics and convergence must be JSON-like: {exc}") from exc
    why = None if convergence_json is None else check_record(convergence_json)
    if why:
        raise StoreError(f"convergence record refused: {why}")
    vdir = layout.versions_dir(store)
    vdir.mkdir(parents=True, exist_ok=True)
    layout.pins_dir(store).mkdir(exist_ok=True)
    tmp = vdir / layout.tmp_name()
    tmp.mkdir()
    try:
        writer = VersionWriter(tmp)
        write_payload(writer, arrays, shapes, data, trace_arrays, files)
        extra = {} if convergence_json is None else {CONVERGENCE_KEY: convergence_json}
        version = _commit(store, tmp, writer, shapes, data, config_json, diagnostics_json, extra)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _collect_after_publish(store)
    return version


def _collect_after_publish(store: Path) -> None:
    """`gc` with `SHARDLENS_KEEP_VERSIONS` (see storage.retention for what it never
    deletes). The version is already published: a failing gc only warns."""
    try:
        report = gc(store)
    except (StoreError, OSError) as exc:
        log.warning("gc after publishing in %s failed: %s", store, exc)
        return
    if report.removed or report.removed_checkpoints:
        log.info(
            "gc after publishing: removed versions %s, checkpoints %s",
            report.removed,
            report.removed_checkpoints,
        )


def _commit(
    store: Path,
    tmp: Path,
    writer: VersionWriter,
    shapes: Shapes,
    data: FittedData,
    config: Any,
    diagnostics: Any,
    extra: Mapping[str, Any],
) -> str:
    """Under the store lock: name the version, write its manifest, rename it, move `latest`."""
    vdir = layout.versions_dir(store)
    with fsio.exclusive_lock(layout.lock_path(store)):
        known = [*layout.version_ids(store), layout.read_latest(store) or ""]
        newest = max(known) or None
        version = layout.new_version_id(after=newest)
        manifest = {
            "format": mf.FORMAT,
            "format_version": mf.FORMAT_VERSION,
            "version": version,
            "created_at": layout.version_time(version).isoformat().replace("+00:00", "Z"),
            "config": config,
            "data": {
                "source": data.source,
                "fingerprint": data.fingerprint(),
                "num_watches": data.num_watches,
                "loading": jsonable(getattr(data, "report", {}) or {}),
            },
            "ids": {"users": id_kind(data.user_ids), "movies": id_kind(data.movie_ids)},
            "shapes": {**shapes._asdict(), "samples": shapes.samples},
            "layout": {
                "sample_index": "k = draw * chains + chain",
                "users": "users.npy [users, samples, latent_dim + 1]: embedding, then bias",
            },
            "files": writer.entries,
            "diagnostics": diagnostics,
            **extra,
            "code": mf.code_version(),
        }
        fsio.write_chunks(tmp / mf.MANIFEST, [mf.dumps(manifest).encode()])
        writer.sync_dirs()
        tmp.rename(vdir / version)
        fsio.fsync_dir(vdir)
        fsio.atomic_write_text(layout.latest_path(store), version + "\n")
    return version
