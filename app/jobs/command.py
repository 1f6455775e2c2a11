"""The training command line for a job (pure: config in, argv out)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# Job config key -> training CLI flag, in the order they are passed.
FLAGS: dict[str, str] = {
    "preset": "--preset",
    "data": "--data",
    "num_chains": "--num-chains",
    "num_leapfrog_steps": "--num-leapfrog-steps",
    "num_burnin_steps": "--num-burnin-steps",
    "num_results": "--num-results",
    "seed": "--seed",
    "latent_dim": "--latent-dim",
    "devices": "--devices",
    "items": "--items",
    "min_rating": "--min-rating",
    "min_user_watches": "--min-user-watches",
    "min_item_watches": "--min-item-watches",
    "user_column": "--user-column",
    "item_column": "--item-column",
    "rating_column": "--rating-column",
    "timestamp_column": "--timestamp-column",
    "id_type": "--id-type",
    "reduction": "--reduction",
    "force_publish": "--force-publish",  # a switch: passed alone when true
}
# Job config keys that are not training flags: they tell the launcher how to run it.
LAUNCHER_KEYS = frozenset({"slurm"})

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
    argv += ["--store", str(store_dir), "--run-id", job_id]
    if data_root is not None:
        argv += ["--data-root", str(data_root)]
    if db_path is not None:
        argv += ["--job-id", job_id, "--jobs-db", str(db_path)]
    argv += list(extra)
    if resume:
        argv.append("--resume")
    return argv
