"""`RunSettings`: flags over `SHARDLENS_*` variables over `.env`, for `python -m training`
and `python -m storage` as for the server."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from storage import layout
from storage.cli import main as storage_main
from storage.retention import default_keep
from tests.helpers.storage_helpers import publish_small
from training.cli.main import build_parser
from training.cli.train import settings_from_args
from training.run_settings import RunSettings, TrainingEnvironment, run_settings


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No SHARDLENS_* variables, and a working folder of our own (for `.env`)."""
    for name in ("SHARDLENS_STORE_DIR", "SHARDLENS_DATA_DIR", "SHARDLENS_PROGRESS_JSONL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _train(*flags: str) -> RunSettings:
    return settings_from_args(build_parser().parse_args(["train", *flags]))


def test_defaults_without_environment(clean_env):
    run = _train()
    assert (run.store, run.data_root) == (Path("var/store"), Path("var/data"))
    assert run.progress_jsonl is None and not run.resume and run.use_cache


def test_dotenv_then_environment_then_flags(clean_env, monkeypatch):
    (clean_env / ".env").write_text(
        "SHARDLENS_STORE_DIR=from-dotenv\nSHARDLENS_DATA_DIR=data-dotenv\n"
        "SHARDLENS_PROGRESS_JSONL=p.jsonl\n"
    )
    run = _train()
    assert (run.store, run.data_root) == (Path("from-dotenv"), Path("data-dotenv"))
    assert run.progress_jsonl == Path("p.jsonl")
    monkeypatch.setenv("SHARDLENS_STORE_DIR", "from-env")
    assert _train().store == Path("from-env")
    run = _train("--store", "from-flag", "--resume", "--run-id", "r1", "--no-cache")
    assert (run.store, run.resume, run.run_id, run.use_cache) == (
        Path("from-flag"),
        True,
        "r1",
        False,
    )
    assert run.data_root == Path("data-dotenv")


def test_an_empty_variable_counts_as_unset(clean_env, monkeypatch):
    monkeypatch.setenv("SHARDLENS_STORE_DIR", "")
    assert run_settings().store == Path("var/store")


def test_settings_are_frozen_and_names_are_checked(clean_env):
    run = run_settings(TrainingEnvironment(), store="s")
    with pytest.raises(AttributeError):
        run.store = Path("t")  # type: ignore[misc]
    with pytest.raises(TypeError):
        run_settings(stroe="typo")


def test_storage_command_reads_dotenv(clean_env, monkeypatch):
    for name in ("SHARDLENS_KEEP_VERSIONS",):
        monkeypatch.delenv(name, raising=False)
    store = clean_env / "elsewhere"
    dotenv = clean_env / ".env"
    # Publishing collects old versions itself, keeping SHARDLENS_KEEP_VERSIONS: keep all
    # three while publishing, then let `python -m storage gc` apply a smaller .env value.
    dotenv.write_text(f"SHARDLENS_STORE_DIR={store}\nSHARDLENS_KEEP_VERSIONS=5\n")
    versions = [publish_small(store, seed=seed) for seed in range(3)]
    dotenv.write_text(f"SHARDLENS_STORE_DIR={store}\nSHARDLENS_KEEP_VERSIONS=2\n")
    assert layout.default_store_dir() == store
    assert default_keep() == 2
    out = io.StringIO()
    assert storage_main(["gc", "--json"], out=out) == 0
    report = json.loads(out.getvalue())
    assert sorted(report["kept"]) == sorted(versions[1:])
    assert report["removed"] == versions[:1]


def test_gate_thresholds_read_dotenv(clean_env, monkeypatch):
    from training.cli.gate_flags import thresholds_from_args

    monkeypatch.delenv("SHARDLENS_GATE_LOGLIK_RHAT", raising=False)
    (clean_env / ".env").write_text("SHARDLENS_GATE_LOGLIK_RHAT=1.25\n")
    args = build_parser().parse_args(["train"])
    assert thresholds_from_args(args).loglik_rhat == 1.25
    args = build_parser().parse_args(["train", "--gate-loglik-rhat", "1.1"])
    assert thresholds_from_args(args).loglik_rhat == 1.1
