"""`RunSettings`: where a run keeps and reports its work, beside `TrainConfig` (what it fits).

Built once per process from the command's flags over the environment: `SHARDLENS_*`
variables, or a `.env` file in the working folder (pydantic-settings), exactly as the
server reads its own settings. A flag given on the command line wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings

from storage.layout import DEFAULT_DATA, DEFAULT_STORE
from storage.store_settings import COMMAND_ENV_CONFIG

__all__ = ["RunSettings", "TrainingEnvironment", "run_settings"]


class TrainingEnvironment(BaseSettings):
    """The `SHARDLENS_*` variables the training commands read (or `.env`; empty = unset)."""

    model_config = COMMAND_ENV_CONFIG

    store_dir: Path = DEFAULT_STORE
    data_dir: Path = DEFAULT_DATA
    progress_jsonl: Path | None = None
    # Publish-gate thresholds as text: the `--gate-*` flags parse them (a bad one exits 2).
    gate_loglik_rhat: str | None = None
    gate_pair_rhat_median: str | None = None
    gate_pair_rhat_max: str | None = None
    gate_loglik_ess_bulk: str | None = None


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """Where one run keeps and reports its work. Paths are as given (relative to the
    working folder); `None` means "not asked for"."""

    store: Path = DEFAULT_STORE  # posterior store: versions, checkpoints, job records
    data_root: Path = DEFAULT_DATA  # named datasets and the tfds cache
    use_cache: bool = True  # read/write the cache of parsed tfds data
    resume: bool = False  # continue from this run's checkpoint
    run_id: str | None = None  # checkpoint folder name (default: config+data fingerprint)
    keep_checkpoint: bool = False  # keep the checkpoint after publishing
    progress_jsonl: Path | None = None  # append one JSON progress line per segment
    stop_after: int | None = None  # stop at the first boundary at or past this iteration
    segment_timeout_s: float | None = None  # exit (code 3) when a segment takes longer
    force_publish: bool = False  # publish a run whose chains did not move (flagged)
    job_id: str | None = None  # report to this job record ...
    jobs_db: Path | None = None  # ... in this job database (default <store>/jobs.sqlite3)
    outcome_file: Path | None = None  # or write the final status here


def run_settings(env: TrainingEnvironment | None = None, **flags: Any) -> RunSettings:
    """`RunSettings` from flags (a `None` flag is unset) over `env` (read now when None).

    `store`, `data_root` and `progress_jsonl` fall back to `SHARDLENS_STORE_DIR`,
    `SHARDLENS_DATA_DIR` and `SHARDLENS_PROGRESS_JSONL`; the rest to their defaults.
    Unknown flag names raise TypeError.
    """
    env = env if env is not None else TrainingEnvironment()
    given = {k: v for k, v in flags.items() if v is not None}
    paths = ("store", "data_root", "progress_jsonl", "jobs_db", "outcome_file")
    values: dict[str, Any] = {k: Path(v) if k in paths else v for k, v in given.items()}
    values.setdefault("store", env.store_dir)
    values.setdefault("data_root", env.data_dir)
    if env.progress_jsonl is not None:
        values.setdefault("progress_jsonl", env.progress_jsonl)
    return RunSettings(**values)
