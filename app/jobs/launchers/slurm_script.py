"""The batch script the Slurm backend submits for one attempt of a job (pure: inputs in,
text out).

Every task runs the training command under `srun`; JAX detects the Slurm step itself
(`--distributed auto`: coordinator, process count and rank come from SLURM_* variables).
The job is submitted with `--requeue`: after a preemption or `scontrol requeue`, Slurm runs
the script again with SLURM_RESTART_COUNT > 0 and the training resumes from its checkpoint.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from app.jobs.launchers.slurm_config import SlurmResources

__all__ = ["job_name", "render_script"]


def job_name(job_id: str) -> str:
    """The Slurm job name of a shardlens job (`squeue --name` finds it)."""
    return f"shardlens-{job_id}"


def _directives(
    job_id: str, log: Path, resources: SlurmResources, admin_lines: Sequence[str]
) -> list[str]:
    options = [
        f"--job-name={job_name(job_id)}",
        f"--output={shlex.quote(str(log))}",
        "--open-mode=append",  # a requeued run adds to the same log
        "--requeue",
        f"--nodes={resources.nodes or 1}",
        f"--ntasks-per-node={resources.tasks_per_node or 1}",
    ]
    if resources.cpus_per_task:
        options.append(f"--cpus-per-task={resources.cpus_per_task}")
    if resources.gpus_per_node:
        options.append(f"--gpus-per-node={resources.gpus_per_node}")
    if resources.partition:
        options.append(f"--partition={resources.partition}")
    if resources.time_limit:
        options.append(f"--time={resources.time_limit}")
    if resources.account:
        options.append(f"--account={resources.account}")
    options += [*admin_lines, *resources.sbatch]
    return [f"#SBATCH {option}" for option in options]


def render_script(
    *,
    job_id: str,
    attempt: int,
    argv: Sequence[str],
    log: Path,
    resources: SlurmResources,
    admin_lines: Sequence[str] = (),
) -> str:
    """The batch script for attempt `attempt` of `job_id`: `#SBATCH` directives from
    `resources` (then the server's `admin_lines`, then the job's own options), and one
    `srun` of `argv` (+ `--resume` from the second attempt on, or after a requeue)."""
    command = " ".join(shlex.quote(a) for a in argv)
    lines = [
        "#!/bin/bash",
        *_directives(job_id, log, resources, admin_lines),
        f"# shardlens job {job_id}, attempt {attempt}. After a preemption or a requeue Slurm",
        "# runs this script again (SLURM_RESTART_COUNT > 0); the training then resumes from",
        "# its checkpoint. Each task is one process of the run; JAX reads SLURM_* itself.",
        "set -eu",
        'resume=""',
        f'if [ {attempt} -gt 1 ] || [ "${{SLURM_RESTART_COUNT:-0}}" -gt 0 ]; then resume=--resume; fi',
        'echo "=== Slurm job ${SLURM_JOB_ID}, restart ${SLURM_RESTART_COUNT:-0}, on $(hostname):'
        ' ${SLURM_NTASKS:-1} task(s) ${resume}"',
        f"exec srun --kill-on-bad-exit=1 {command} ${{resume}}",
        "",
    ]
    return "\n".join(lines)
