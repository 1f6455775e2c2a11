"""`python -m training train`: end-to-end smoke run, and exit code 2 for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.cli.main import main

ROOT = Path(__file__).resolve().parents[3]


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
    # 20 draws x 2 chains cannot reach a bulk ESS of 200: published, flagged unconverged.
    verdict = summary["convergence"]
    assert verdict["converged"] is False and verdict["thresholds"]["loglik_ess_bulk"] == 200
    assert any("bulk ESS" in f for f in verdict["failures"])
    from storage.posterior import open_posterior

    with open_posterior(store, summary["version"]) as posterior:
        assert posterior.manifest["convergence"] == verdict


def _train(store: Path, *flags: str, progress: Path | None = None):
    extra = ["--progress-jsonl", str(progress)] if progress else []
    return subprocess.run(
        [sys.executable, "-m", "training", "train", "--preset", "smoke", "--store", str(store),
         "--json", *extra, *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip


@pytest.mark.slow
def test_a_stuck_run_is_refused_and_force_publish_publishes_it_flagged(tmp_path):
    from storage.posterior import list_versions, open_posterior

    store = tmp_path / "store"
    stuck = ["--step-size", "1e6", "--adaptation-share", "0"]
    refused = _train(store, *stuck)
    assert refused.returncode == 4, refused.stderr
    message = refused.stderr.strip().splitlines()[-1]
    assert message.startswith("error: refusing to publish: the chains did not move")
    assert "mean acceptance over sampling is 0 < 0.05" in message
    assert "chains 0, 1 accepted none of 20 proposals" in message
    assert "Lower --step-size" in message and "--resume --force-publish" in message
    assert list_versions(store) == []
    assert list((store / "checkpoints").iterdir())  # kept, to publish from

    # As the message says: publish the same draws without sampling again, flagged.
    progress = tmp_path / "progress.jsonl"
    forced = _train(store, *stuck, "--resume", "--force-publish", progress=progress)
    assert forced.returncode == 0, forced.stderr
    summary = json.loads(forced.stdout)
    assert "warning: publishing anyway (--force-publish)" in forced.stderr
    phases = {json.loads(line)["phase"] for line in progress.read_text().splitlines()}
    assert not phases & {"burnin", "sampling"}  # nothing was sampled again
    assert summary["convergence"]["converged"] is False
    assert summary["diagnostics"]["moves_per_chain"] == [0, 0]
    with open_posterior(store, summary["version"]) as posterior:
        assert posterior.manifest["convergence"]["converged"] is False
        assert posterior.file("plots/trace.png").read_bytes()[:4] == b"\x89PNG"
    assert [v.converged for v in list_versions(store)] == [False]


def test_non_finite_and_out_of_range_flags_exit_2_before_jax_is_imported():
    bad = [
        ["--step-size", "inf"],
        ["--step-size", "nan"],
        ["--step-size", "-0.1"],
        ["--prior-scale", "inf"],
        ["--adaptation-share", "nan"],
        ["--adaptation-share", "1.5"],
        ["--seed", "-1"],
        ["--seed", str(2**32)],
        ["--num-results", str(2**31)],
        ["--segment-timeout", "inf"],
        ["--segment-timeout", "0"],
        ["--stop-after", "0"],
        ["--gate-loglik-rhat", "nan"],
        ["--gate-pair-rhat-max", "0.5"],
        ["--gate-loglik-ess-bulk", "-5"],
    ]
    script = (
        "import json, sys\n"
        "from training.cli.main import main\n"
        "codes = [main(['train', '--preset', 'smoke', '--store', sys.argv[1], *f])"
        " for f in json.loads(sys.argv[2])]\n"
        "print(json.dumps({'codes': codes, 'jax': 'jax' in sys.modules}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, "unused-store", json.dumps(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result == {"codes": [2] * len(bad), "jax": False}
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(bad)
    for flags, line in zip(bad, errors, strict=True):
        assert flags[0] in line or flags[0][2:].replace("-", "_") in line, (flags, line)


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
