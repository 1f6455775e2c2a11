"""The job contract ties the server's launchers to `python -m training train`."""

from __future__ import annotations

import typing

import pytest

from app.jobs.command import DEFAULT_PROGRAM, training_command
from app.jobs.job_config import JobConfig
from app.jobs.schemas import JobProgress
from common.jobspec import (
    JOB_FLAGS,
    LAUNCHER_KEYS,
    PRESET_NAMES,
    PROGRESS_FIELDS,
    PROGRESS_RATES,
    RUN_FLAGS,
)
from storage.job_store import JobStore
from training.cli.main import build_parser
from training.config import PRESETS

# One valid value per job config key (a bool is a switch).
_VALUES = {
    "preset": "smoke",
    "data": "synthetic:users=5,movies=4",
    "num_chains": 3,
    "num_leapfrog_steps": 4,
    "num_burnin_steps": 5,
    "num_results": 6,
    "seed": 7,
    "latent_dim": 2,
    "devices": 1,
    "items": "items.csv",
    "min_rating": 3.5,
    "min_user_watches": 2,
    "min_item_watches": 3,
    "user_column": "u",
    "item_column": "i",
    "rating_column": "r",
    "timestamp_column": "t",
    "id_type": "str",
    "reduction": "ordered",
    "force_publish": True,
}


def _train_options() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    train = sub.choices["train"]  # type: ignore[index]
    return {s for a in train._actions for s in a.option_strings}


def test_every_job_key_has_a_valid_value_here():
    assert set(_VALUES) == set(JOB_FLAGS)
    JobConfig.model_validate(_VALUES)


def test_job_config_fields_are_the_flags_and_launcher_keys():
    assert set(JobConfig.model_fields) == set(JOB_FLAGS) | LAUNCHER_KEYS


def test_every_flag_a_launcher_writes_is_a_train_option():
    options = _train_options()
    missing = [f for f in (*JOB_FLAGS.values(), *RUN_FLAGS.values()) if f not in options]
    assert not missing, f"python -m training train does not accept {missing}"


def test_the_launchers_argv_parses_to_the_job_config(tmp_path):
    argv = training_command(
        _VALUES,
        job_id="job1",
        store_dir=tmp_path / "store",
        db_path=tmp_path / "jobs.sqlite3",
        data_root=tmp_path / "data",
        resume=True,
        extra=["--outcome-file", str(tmp_path / "o.json")],
    )
    assert argv[: len(DEFAULT_PROGRAM)] == list(DEFAULT_PROGRAM)
    assert DEFAULT_PROGRAM[-3:] == ("-m", "training", "train")
    args = build_parser().parse_args(argv[len(DEFAULT_PROGRAM) - 1 :])
    assert args.command == "train"
    for key, value in _VALUES.items():
        assert getattr(args, key) == value, key
    assert (args.store, args.run_id, args.job_id) == (str(tmp_path / "store"), "job1", "job1")
    assert args.jobs_db == str(tmp_path / "jobs.sqlite3")
    assert args.data_root == str(tmp_path / "data")
    assert args.resume is True
    assert args.outcome_file == str(tmp_path / "o.json")


def test_preset_names_agree():
    assert tuple(PRESETS) == PRESET_NAMES
    assert typing.get_args(JobConfig.model_fields["preset"].annotation) == PRESET_NAMES


def test_progress_fields_agree(tmp_path):
    assert set(PROGRESS_RATES) <= set(PROGRESS_FIELDS)
    shown = set(JobProgress.model_fields) - {"fraction", "updated_at"}
    assert shown == set(PROGRESS_FIELDS)
    store = JobStore(tmp_path / "jobs.sqlite3")
    job = store.create(config={"preset": "smoke"})
    payload = {name: 1 for name in PROGRESS_FIELDS} | {"phase": "sampling"}
    store.mark_running(job.id)
    assert store.update_progress(job.id, payload)
    kept = store.get(job.id).progress
    assert {k: kept[k] for k in PROGRESS_FIELDS} == payload


@pytest.mark.parametrize("flag", ["--num-chains", "--devices"])
def test_a_bad_value_is_refused_by_the_training_parser(flag, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", flag, "x"])
