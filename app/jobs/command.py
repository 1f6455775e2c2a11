"""The training command line for a job (pure: config in, argv out)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from common.jobspec import JOB_FLAGS, LAUNCHER_KEYS, RUN_FLAGS

FLAGS = JOB_FLAGS  # job config key -> training CLI flag (common.jobspec)

DEFAULT_PROGRAM: tuple[str, ...] = (sys.executable, "-m", "training", "train")


def training_command(
    config: Mapping[str, Any],
    *,
    job_id: str,
    store_dir: str | Path,
    db_path: str | Path | None,
    data_root: str | Path | None = None,
    resume: bool = False,
    program: Sequence[str] = DEFAULT_PROGRAM,
    extra: Sequence[str] = (),
) -> list[str]:
    """argv for one attempt of a job. The checkpoint folder is named after the job id
    (`--run-id`), so a resumed attempt finds the previous attempt's checkpoint. With
    `db_path`, the process reports to that job database (`--job-id`, `--jobs-db`); without
    it, `extra` says where it reports (e.g. `--outcome-file`)."""
    unknown = set(config) - set(FLAGS) - LAUNCHER_KEYS
    if unknown:
        raise ValueError(f"job config has unknown keys {sorted(unknown)}; allowed: {list(FLAGS)}")
    argv = list(program)
    for key, flag in FLAGS.items():
        value = config.get(key)
        if isinstance(value, bool):
            argv += [flag] if value else []
        elif value is not None:
            argv += [flag, str(value)]
    argv += [RUN_FLAGS["store"], str(store_dir), RUN_FLAGS["run_id"], job_id]
    if data_root is not None:
        argv += [RUN_FLAGS["data_root"], str(data_root)]
    if db_path is not None:
        argv += [RUN_FLAGS["job_id"], job_id, RUN_FLAGS["jobs_db"], str(db_path)]
    argv += list(extra)
    if resume:
        argv.append(RUN_FLAGS["resume"])
    return argv
