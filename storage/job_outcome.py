"""A job's outcome as a file in the store, for training processes that cannot reach the job
database: on cluster nodes, SQLite must not be shared between hosts over a network
filesystem. The training process writes `{"status": "succeeded", "version": ...}` or
`{"status": "failed", "error": ...}`; the server's job runner reads it into the database.
So a job's success never depends on the scheduler still remembering the job."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from storage.fsio import atomic_write_text

__all__ = ["Outcome", "OutcomeError", "read_outcome", "write_outcome"]

OUTCOME_STATUSES = ("succeeded", "failed")


class OutcomeError(ValueError):
    """An outcome file exists but does not hold an outcome."""


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """How a training process ended: `succeeded` with the published `version`, or
    `failed` with the `error` it reported."""

    status: Literal["succeeded", "failed"]
    version: str | None = None
    error: str | None = None


def write_outcome(path: str | Path, outcome: Outcome, *, keep_existing: bool = False) -> bool:
    """Write `outcome` to `path` atomically (temp file, fsync, rename). With
    `keep_existing`, an outcome already there stays (in a run over several processes the
    first failure reported is the cause, the others its echo). True when written."""
    path = Path(path)
    if keep_existing and path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(asdict(outcome)) + "\n")
    return True


def read_outcome(path: str | Path) -> Outcome | None:
    """The outcome in `path`, None when there is no file. Raises `OutcomeError` for a file
    that is not an outcome."""
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw)
        status = data["status"]
    except (ValueError, TypeError, KeyError) as exc:
        raise OutcomeError(f"{path} is not a job outcome ({exc!r}): {raw[:200]!r}") from None
    if status not in OUTCOME_STATUSES:
        raise OutcomeError(f"{path} has status {status!r}; expected one of {OUTCOME_STATUSES}")
    return Outcome(status=status, version=data.get("version"), error=data.get("error"))
