"""`python -m training train`: end-to-end smoke run, and exit code 2 for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _published(store: Path, version: str) -> dict[str, np.ndarray]:
    try:
        from storage.posterior import open_posterior
    except ImportError:
        folder = store / "unpublished" / version
        assert (folder / "plots" / "trace.png").read_bytes()[:4] == b"\x89PNG"
        return {p.stem: np.load(p) for p in folder.glob("*.npy")}
    posterior = open_posterior(store, version)
    try:
        assert posterior.file("plots/trace.png").read_bytes()[:4] == b"\x89PNG"
        return {**posterior.samples(), **posterior.traces}
    finally:
        posterior.close()


@pytest.mark.slow
def test_train_smoke_end_to_end(tmp_path):
    store = tmp_path / "store"
    progress = tmp_path / "progress.jsonl"
    proc = subprocess.run(
        [
            sys.executable, "-m", "training", "train", "--preset", "smoke", "--store", str(store),
            "--devices", "2", "--progress-jsonl", str(progress), "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["shapes"]["user_embeddings"] == [20, 2, 40, 3]
    assert summary["diagnostics"]["leapfrog_per_s"] > 0
    arrays = _published(store, summary["version"])
    assert arrays["user_embeddings"].shape == (20, 2, 40, 3)
    assert arrays["movie_bias"].shape == (20, 2, 30)
    assert arrays["target_log_prob"].shape == (60, 2)
    assert arrays["step_size"].shape == (60,)
    lines = [json.loads(line) for line in progress.read_text().splitlines()]
    assert lines[0]["phase"] == "compile"
    assert {"burnin", "sampling", "saving"} <= {line["phase"] for line in lines}
    assert set(lines[-2]) == {
        "phase", "iteration", "total", "leapfrog_per_s", "acceptance", "step_size", "eta_s",
    }  # fmt: skip
    assert not list((store / "checkpoints").iterdir())  # removed once published


@pytest.mark.parametrize(
    "flags",
    [
        ["--latent-dim", "0"],
        ["--num-chains", "-1"],
        ["--devices", "99"],
        ["--data", "/nonexistent/ml-1m.zip"],
        ["--data", "synthetic:users=abc"],
    ],
)
def test_bad_config_or_data_exits_2(flags, tmp_path, capsys):
    code = main(["train", "--preset", "smoke", "--store", str(tmp_path), *flags])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: ")
