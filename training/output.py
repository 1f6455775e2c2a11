"""Hand a finished run to the posterior store (or, before it exists, to a plain folder)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from training.data import WatchData
from training.plots import trace_plot_png
from training.train import TrainResult

PLOT_NAME = "plots/trace.png"


def result_files(result: TrainResult) -> dict[str, bytes]:
    return {
        PLOT_NAME: trace_plot_png(result.traces, num_burnin_steps=result.config.num_burnin_steps)
    }


def result_config(result: TrainResult) -> dict[str, Any]:
    return {**result.config.as_dict(), "fingerprint": result.fingerprint}


def save_result(store_dir: str | Path, result: TrainResult) -> str:
    """Publish `result`; returns the version id (or the fallback folder's name)."""
    files = result_files(result)
    data = result.data
    try:
        from storage.posterior import publish_posterior
    except ImportError:
        return _save_unpublished(Path(store_dir), result, data, files)
    return publish_posterior(
        store_dir,
        samples=result.samples,
        data=data,
        config=result_config(result),
        traces=result.traces,
        diagnostics=result.diagnostics,
        files=files,
    )


def _save_unpublished(
    store: Path, result: TrainResult, data: WatchData, files: dict[str, bytes]
) -> str:
    """Fallback while storage is not merged: npy files + a manifest-like JSON."""
    name = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder = store / "unpublished" / name
    folder.mkdir(parents=True, exist_ok=False)
    for key, value in {**result.samples, **result.traces}.items():
        np.save(folder / f"{key}.npy", value)
    for key, content in files.items():
        (folder / key).parent.mkdir(parents=True, exist_ok=True)
        (folder / key).write_bytes(content)
    manifest = {
        "version": name,
        "data": {"source": data.source, "fingerprint": data.fingerprint()},
        "config": result_config(result),
        "diagnostics": result.diagnostics,
        "shapes": {k: list(v.shape) for k, v in {**result.samples, **result.traces}.items()},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, default=_jsonable))
    return name


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
