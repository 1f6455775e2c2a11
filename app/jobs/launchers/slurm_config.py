"""Slurm resources: the server's defaults (`SHARDLENS_SLURM__*`), a job's overrides (the
`slurm` object of `POST /jobs`), and the checks both pass before a job is submitted."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DEFAULT_ALLOWED_OPTIONS",
    "ResourceError",
    "SlurmResources",
    "SlurmSettings",
    "effective_resources",
    "local_devices",
]

# Slurm's --time formats: minutes, minutes:seconds, hours:minutes:seconds, days-hours,
# days-hours:minutes, days-hours:minutes:seconds (`man sbatch`), or UNLIMITED.
TIME_LIMIT = r"^(\d+(:\d{1,2}){0,2}|\d+-\d+(:\d{1,2}){0,2}|UNLIMITED|INFINITE)$"
NAME = r"^[A-Za-z0-9_.-]+$"
# One sbatch option: `--name` or `--name=value`; no blanks or quotes, so it stays one
# option on its `#SBATCH` line.
OPTION = re.compile(r"^--([a-z][a-z0-9-]*)(=[A-Za-z0-9_.,:=/@%+*\[\]-]+)?$")

# Options a job may add with `"slurm": {"sbatch": [...]}` unless the server says otherwise.
# The ones the backend sets itself (--output, --job-name, --requeue, the resources above)
# are never allowed.
DEFAULT_ALLOWED_OPTIONS: tuple[str, ...] = (
    "qos",
    "constraint",
    "mem",
    "mem-per-cpu",
    "mem-per-gpu",
    "gres",
    "exclusive",
    "reservation",
    "comment",
    "exclude",
    "nodelist",
    "begin",
    "hold",
    "nice",
    "mail-type",
    "mail-user",
    "licenses",
)
RESERVED_OPTIONS = frozenset(
    {
        "output",
        "error",
        "open-mode",
        "job-name",
        "requeue",
        "no-requeue",
        "nodes",
        "ntasks",
        "ntasks-per-node",
        "gpus-per-node",
        "cpus-per-task",
        "partition",
        "time",
        "account",
        "export",
        "chdir",
        "wrap",
        "array",
        "parsable",
    }
)


class ResourceError(ValueError):
    """A job's Slurm resources are not acceptable; the message says what to change."""


class SlurmResources(BaseModel):
    """Slurm resources of one job (every field optional: the server's defaults fill in)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"nodes": 2, "tasks_per_node": 4, "gpus_per_node": 4, "time_limit": "02:00:00"},
                {"partition": "gpu", "account": "recsys", "sbatch": ["--qos=high"]},
            ]
        },
    )

    nodes: int | None = Field(None, ge=1, le=4096, description="nodes (`--nodes`)")
    tasks_per_node: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="training processes per node (`--ntasks-per-node`); on GPUs, one per GPU",
    )
    gpus_per_node: int | None = Field(None, ge=0, le=64, description="`--gpus-per-node`")
    cpus_per_task: int | None = Field(None, ge=1, le=4096, description="`--cpus-per-task`")
    partition: str | None = Field(None, pattern=NAME, max_length=128, description="`--partition`")
    time_limit: str | None = Field(
        None,
        pattern=TIME_LIMIT,
        description="`--time`: minutes, `HH:MM:SS`, `D-HH:MM:SS` or `UNLIMITED`",
        examples=["01:30:00"],
    )
    account: str | None = Field(None, pattern=NAME, max_length=128, description="`--account`")
    sbatch: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="extra `#SBATCH` options such as `--qos=high`, from the server's "
        "allow-list (SHARDLENS_SLURM__ALLOWED_OPTIONS)",
    )


class SlurmSettings(BaseModel):
    """The Slurm backend's settings (environment `SHARDLENS_SLURM__<FIELD>`)."""

    model_config = ConfigDict(extra="forbid")

    nodes: int = Field(default=1, ge=1, description="default nodes per job (`--nodes`)")
    tasks_per_node: int = Field(
        default=1,
        ge=1,
        description="default training processes per node, one per GPU (`--ntasks-per-node`)",
    )
    gpus_per_node: int = Field(
        default=0, ge=0, description="default GPUs per node, 0: none asked (`--gpus-per-node`)"
    )
    cpus_per_task: int | None = Field(
        default=None, ge=1, description="default CPUs per task (`--cpus-per-task`)"
    )
    partition: str | None = Field(
        default=None, pattern=NAME, description="default partition (`--partition`)"
    )
    time_limit: str | None = Field(
        default=None,
        pattern=TIME_LIMIT,
        description="default time limit (`--time`: `MM`, `HH:MM:SS`, `D-HH:MM:SS`, `UNLIMITED`)",
    )
    account: str | None = Field(
        default=None, pattern=NAME, description="default account (`--account`)"
    )
    sbatch_lines: list[str] = Field(
        default_factory=list,
        description="options added to every job's batch script (not limited by the "
        "allow-list), e.g. `--qos=ml`",
    )
    allowed_options: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED_OPTIONS),
        description="sbatch option names a job may add in `slurm.sbatch`",
    )
    conf: Path | None = Field(
        default=None, description="slurm.conf for the client commands (sets SLURM_CONF)"
    )
    bin_dir: Path | None = Field(
        default=None, description="folder of sbatch, scontrol, scancel and sacct (default: PATH)"
    )
    poll_interval_s: float = Field(
        default=5.0, gt=0, le=600, description="seconds between `scontrol show job` calls per job"
    )
    command_timeout_s: float = Field(
        default=60.0,
        gt=0,
        le=600,
        description="seconds a Slurm command may take before it counts as failed",
    )


def check_options(options: list[str], *, allowed: list[str] | tuple[str, ...]) -> list[str]:
    """`options` when each is a well-formed sbatch option on the allow-list."""
    for option in options:
        match = OPTION.match(option)
        if match is None:
            raise ResourceError(
                f"sbatch option {option!r} is not of the form --name or --name=value "
                "(no blanks or quotes)"
            )
        name = match.group(1)
        if name in RESERVED_OPTIONS:
            raise ResourceError(
                f"sbatch option --{name} is set by the Slurm backend itself; use the "
                "`slurm` fields (nodes, tasks_per_node, gpus_per_node, cpus_per_task, "
                "partition, time_limit, account) instead"
            )
        if name not in allowed:
            raise ResourceError(
                f"sbatch option --{name} is not allowed on this server; allowed: "
                f"{', '.join('--' + a for a in allowed) or 'none'} "
                "(setting SHARDLENS_SLURM__ALLOWED_OPTIONS)"
            )
    return options


def effective_resources(
    settings: SlurmSettings, overrides: SlurmResources | dict[str, Any] | None
) -> SlurmResources:
    """The server's defaults with a job's overrides applied; the job's sbatch options are
    checked against the allow-list (`ResourceError`)."""
    if isinstance(overrides, dict):
        overrides = SlurmResources.model_validate(overrides)
    job = overrides.model_dump(exclude_none=True) if overrides else {}
    check_options(job.get("sbatch", []), allowed=settings.allowed_options)
    merged = {
        name: job.get(name, getattr(settings, name))
        for name in SlurmResources.model_fields
        if name != "sbatch"
    }
    return SlurmResources(**merged, sbatch=job.get("sbatch", []))


def local_devices(devices: int | None, resources: SlurmResources) -> int | None:
    """Fake CPU devices per training process for a CPU job that asks for `devices` (None for
    GPU jobs and when `devices` is not given). Raises `ResourceError` when they do not split
    evenly over the processes."""
    if devices is None or resources.gpus_per_node:
        return None
    tasks = (resources.nodes or 1) * (resources.tasks_per_node or 1)
    if devices % tasks:
        raise ResourceError(
            f"devices {devices} do not split evenly over {tasks} Slurm tasks "
            f"(nodes x tasks_per_node); use a multiple of {tasks}"
        )
    return devices // tasks
