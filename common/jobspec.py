"""The training-job contract, written once for both sides of the process boundary.

The server's launchers turn a job's config into `python -m training train` flags
(`JOB_FLAGS`, then the `RUN_FLAGS` that say where the run keeps and reports its work); the
training process reports progress payloads whose keys are `PROGRESS_FIELDS`, which the job
store keeps and the API shows. `tests/common/test_jobspec.py` checks both sides against this.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "JOB_FLAGS",
    "LAUNCHER_KEYS",
    "PHASES",
    "PRESET_NAMES",
    "PROGRESS_FIELDS",
    "PROGRESS_RATES",
    "RUN_FLAGS",
    "Preset",
]

# The training presets (`training.config.PRESETS` defines them).
Preset = Literal["smoke", "default", "cpu", "reference"]
PRESET_NAMES: tuple[str, ...] = get_args(Preset)

# Job config key -> training CLI flag, in the order they are passed. A bool is a switch:
# passed alone when true.
JOB_FLAGS: dict[str, str] = {
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
    "force_publish": "--force-publish",
}
# Job config keys that are not training flags: they tell the launcher how to run it.
LAUNCHER_KEYS = frozenset({"slurm"})

# Flags a launcher adds for the run itself: where it keeps its work and how it reports.
RUN_FLAGS: dict[str, str] = {
    "store": "--store",
    "run_id": "--run-id",
    "data_root": "--data-root",
    "job_id": "--job-id",
    "jobs_db": "--jobs-db",
    "resume": "--resume",  # a switch
    "outcome_file": "--outcome-file",
    "progress_jsonl": "--progress-jsonl",
    "distributed": "--distributed",
    "local_devices": "--local-devices",
}

# What a training process is doing, in order.
PHASES = ("compile", "burnin", "sampling", "saving")
# Rates of the last segment, None while compiling or saving.
PROGRESS_RATES = ("leapfrog_per_s", "acceptance", "step_size", "eta_s")
# The keys of a progress payload the job store keeps (a payload may add `sizes`).
PROGRESS_FIELDS = ("phase", "iteration", "total", *PROGRESS_RATES)
