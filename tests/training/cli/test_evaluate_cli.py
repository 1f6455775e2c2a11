"""`python -m training evaluate` end to end on the tiny ml-100k files and on synthetic data."""

from __future__ import annotations

import json

import pytest

from storage.posterior import open_posterior
from training.cli.evaluate import REPORT_FILE
from training.cli.main import main as training_main
from training.data import load_source

pytestmark = pytest.mark.slow


def _evaluate(capsys, *args: str) -> dict:
    assert training_main(["evaluate", "--preset", "smoke", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def _check_report(report: dict, store) -> None:
    assert set(report["rankers"]) == {
        "posterior_mean",
        "pick_counts",
        "point_estimate",
        "popularity",
    }
    for metrics in report["rankers"].values():
        assert set(metrics) == {"hr@10", "recall@20", "ndcg@10"}
        assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert 0.0 <= report["calibration"]["brier"] <= 1.0
    version = open_posterior(store, report["version"])
    stored = json.loads(version.file(REPORT_FILE).read_text())
    assert stored["rankers"] == report["rankers"]
    for name in ("reliability", "entropy_vs_history", "rankers"):
        assert version.file(f"evaluation/{name}.png").read_bytes().startswith(b"\x89PNG")


def test_evaluate_on_ml100k_files_with_latest_split(capsys, tmp_path, ml100k_dir):
    store = tmp_path / "store"
    report = _evaluate(
        capsys, "--data", str(ml100k_dir), "--split", "latest", "--store", str(store)
    )
    _check_report(report, store)
    # Users 196, 186 and 22 have two watches each: one held out per user (their latest).
    assert report["split"] | {"strategy": "latest"} == report["split"]
    assert report["split"]["scored_users"] == 3 and report["split"]["heldout_watches"] == 3
    # The published posterior was fitted on the training split only.
    assert open_posterior(store, report["version"]).watch_counts.sum() == 7 - 3


def test_evaluate_on_synthetic_data(capsys, tmp_path):
    store = tmp_path / "store"
    report = _evaluate(
        capsys,
        "--data",
        "synthetic:users=60,movies=40,seed=3",
        "--store",
        str(store),
        "--holdout",
        "0.3",
    )
    _check_report(report, store)
    scorable = int((load_source("synthetic:users=60,movies=40,seed=3").watch_counts >= 2).sum())
    assert report["split"]["fraction"] == 0.3 and report["split"]["scored_users"] == scorable


def test_evaluate_rejects_a_latest_split_without_timestamps(capsys, tmp_path):
    code = training_main(
        ["evaluate", "--preset", "smoke", "--split", "latest", "--store", str(tmp_path)]
    )
    assert code == 2
    assert "needs timestamps" in capsys.readouterr().err
