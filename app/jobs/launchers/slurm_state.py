"""What Slurm says about a job: parse `scontrol show job -o` and `sacct -P` output, and map
Slurm's job states onto the job states the API shows.

Pure functions over text, so the mapping is tested on recorded output (`tests/data/scontrol/`)
including states a test cluster cannot produce (NODE_FAIL, OUT_OF_MEMORY without cgroups).
State names are Slurm's (`man squeue`, "JOB STATE CODES").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "ENDED",
    "KINDS",
    "SlurmJob",
    "describe_end",
    "kind_of",
    "parse_sacct",
    "parse_scontrol",
    "stepd_messages",
]

KINDS = (
    "pending",
    "running",
    "completed",
    "failed",
    "cancelled",
    "timeout",
    "node_fail",
    "out_of_memory",
)
ENDED = frozenset(KINDS) - {"pending", "running"}

_KIND_OF: dict[str, str] = {
    # not started yet, or requeued and waiting to start again
    "PENDING": "pending",
    "REQUEUED": "pending",
    "REQUEUE_HOLD": "pending",
    "REQUEUE_FED": "pending",
    "RESV_DEL_HOLD": "pending",
    "CONFIGURING": "pending",  # nodes allocated, still booting: the training has not started
    # its processes exist (possibly stopped or finishing)
    "RUNNING": "running",
    "COMPLETING": "running",
    "SUSPENDED": "running",
    "STOPPED": "running",
    "SIGNALING": "running",
    "STAGE_OUT": "running",
    "RESIZING": "running",
    # ended
    "COMPLETED": "completed",
    "FAILED": "failed",
    "BOOT_FAIL": "failed",
    "DEADLINE": "failed",
    "PREEMPTED": "failed",  # preempted and not requeued (PreemptMode=CANCEL)
    "SPECIAL_EXIT": "failed",
    "REVOKED": "failed",
    "CANCELLED": "cancelled",
    "TIMEOUT": "timeout",
    "NODE_FAIL": "node_fail",
    "OUT_OF_MEMORY": "out_of_memory",
}

# A key starts a field: at the start of the line or after a blank, letters then word
# characters, ':' or '/' (`AllocNode:Sid`, `CPUs/Task`), then '='. Values may hold blanks
# (a path) and '=' (`TRES=cpu=1,node=1`).
_FIELD = re.compile(r"(?:^|(?<=\s))([A-Za-z][\w:/]*)=")


def kind_of(state: str) -> str:
    """The job state for a Slurm state name (`CANCELLED by 0` and `RUNNING+` count as
    `CANCELLED`, `RUNNING`); an unknown name counts as `running`, so a job is never ended
    by a state this code does not know."""
    name = re.split(r"[\s+]", state.strip(), maxsplit=1)[0].upper()
    return _KIND_OF.get(name, "running")


@dataclass(frozen=True, kw_only=True)
class SlurmJob:
    """The fields of one Slurm job record that the job runner uses."""

    job_id: str
    state: str  # Slurm's name, e.g. PENDING, TIMEOUT
    reason: str | None  # why it is pending, or why it ended (None for Slurm's "None")
    exit_code: str | None  # "code:signal"
    restarts: int
    start_time: float | None  # Unix seconds; None before it started
    time_limit: str | None
    node_list: str | None
    fields: dict[str, str]  # everything Slurm said

    @property
    def kind(self) -> str:
        return kind_of(self.state)

    @property
    def ended(self) -> bool:
        return self.kind in ENDED


def _none(value: str | None) -> str | None:
    return None if value in (None, "", "None", "(null)", "Unknown", "N/A") else value


def _time(value: str | None) -> float | None:
    """Slurm's local ISO time (`2026-11-29T19:35:43`) as Unix seconds."""
    value = _none(value)
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def parse_fields(line: str) -> dict[str, str]:
    """`Key=value Key2=value two ...` as a dict (the first of repeated keys wins)."""
    matches = list(_FIELD.finditer(line))
    fields: dict[str, str] = {}
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
        fields.setdefault(match.group(1), line[match.end() : end].strip())
    return fields


def parse_scontrol(text: str) -> SlurmJob:
    """The job in `scontrol show job -o ID` output (one line per job; the first is used).
    Raises ValueError when the text holds no job record."""
    line = next((ln for ln in text.splitlines() if "JobId=" in ln), None)
    if line is None:
        raise ValueError(f"no job record in scontrol output: {text.strip()[:300]!r}")
    fields = parse_fields(line.strip())
    if "JobState" not in fields:
        raise ValueError(f"no JobState in scontrol output: {line.strip()[:300]!r}")
    state = fields["JobState"]
    return SlurmJob(
        job_id=fields["JobId"],
        state=state,
        reason=_none(fields.get("Reason")),
        exit_code=_none(fields.get("ExitCode")),
        restarts=int(fields.get("Restarts", "0") or 0),
        start_time=_time(fields.get("StartTime")) if kind_of(state) != "pending" else None,
        time_limit=_none(fields.get("TimeLimit")),
        node_list=_none(fields.get("NodeList")),
        fields=fields,
    )


SACCT_FORMAT = "JobID,State,ExitCode,Reason,Start,Timelimit,NodeList"


def parse_sacct(text: str, job_id: str) -> SlurmJob | None:
    """The allocation line of `job_id` in `sacct -X -n -P -o SACCT_FORMAT` output (None when
    sacct does not list it)."""
    names = SACCT_FORMAT.split(",")
    for line in text.splitlines():
        values = line.split("|")
        if len(values) != len(names) or values[0] != job_id:
            continue
        fields = dict(zip(names, values, strict=True))
        state = fields["State"]
        return SlurmJob(
            job_id=job_id,
            state=state.split()[0] if state else "UNKNOWN",
            reason=_none(fields["Reason"]),
            exit_code=_none(fields["ExitCode"]),
            restarts=0,
            start_time=_time(fields["Start"]),
            time_limit=_none(fields["Timelimit"]),
            node_list=_none(fields["NodeList"]),
            fields=fields,
        )
    return None


_STEPD = re.compile(r"slurmstepd[\w-]*: error: \*\*\* (.+?) \*\*\*")


def stepd_messages(log_lines: list[str]) -> list[str]:
    """Slurm's own notices in a job's output file, e.g. `JOB 12 ON node1 CANCELLED AT
    2026-11-29T19:34:58 DUE TO TIME LIMIT`."""
    return [m.group(1) for line in log_lines if (m := _STEPD.search(line))]


def _said(job: SlurmJob) -> str:
    parts = [f"JobState={job.state}"]
    if job.reason:
        parts.append(f"Reason={job.reason}")
    if job.exit_code:
        parts.append(f"ExitCode={job.exit_code}")
    return " ".join(parts)


def describe_end(job: SlurmJob, *, notices: list[str] | None = None) -> str:
    """Why an ended Slurm job has no result, in Slurm's own words plus what to do."""
    said = _said(job)
    notice = f"; Slurm: {notices[-1]}" if notices else ""
    what = f"Slurm job {job.job_id}"
    match job.kind:
        case "timeout":
            limit = f" ({job.time_limit})" if job.time_limit else ""
            text = (
                f"{what} reached its time limit{limit} and was stopped ({said}{notice}); "
                "its checkpoint is kept: resume the job, or submit it with a longer "
                "`slurm.time_limit`"
            )
        case "node_fail":
            nodes = f" {job.node_list}" if job.node_list else ""
            text = (
                f"a node of {what} failed{nodes} ({said}{notice}); its checkpoint is kept: "
                "resume the job"
            )
        case "out_of_memory":
            text = (
                f"{what} ran out of memory ({said}{notice}); ask for more memory (e.g. "
                '`"slurm": {"sbatch": ["--mem=64G"]}`) or use more devices, then resume'
            )
        case "cancelled":
            text = f"{what} was cancelled in Slurm, not through the API ({said}{notice})"
        case "completed":
            text = f"{what} completed ({said}) but the training reported no result"
        case _:
            text = f"{what} failed ({said}{notice}); the job's log says why"
    return text
