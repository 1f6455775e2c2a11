"""Where things live in a store, and version ids that sort by time.

<store>/
  latest                      text file: the current version id (replaced atomically)
  .lock                       flock'ed while the pointer moves, pins are taken, gc runs
  versions/<id>/              one complete, immutable version (see posterior.py)
  versions/.tmp-<pid>-<host>-<hex>/  a version being written (never read; gc removes dead)
  versions/.trash-<id>-<hex>/ a version being deleted by gc
  pins/<id>/<pid>-<host>-<hex>      a live process uses version <id>
  pins/<id>/held              an operator keeps version <id> (`python -m storage pin`)
  checkpoints/<run-key>/      a training run's checkpoints (the job id for a job; training.run.checkpoint)
  jobs.sqlite3                job records (storage.job_store)
  jobs/runner.lock            held by the one job runner of this store
  jobs/<job-id>.log           a job's output
  jobs/<job-id>/              a cluster job's batch script, progress lines and outcome
"""

from __future__ import annotations

import os
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

from storage.store_settings import StoreSettings

__all__ = [
    "DATA_ENV",
    "DEFAULT_DATA",
    "DEFAULT_STORE",
    "LATEST",
    "STORE_ENV",
    "TMP_PREFIX",
    "TRASH_PREFIX",
    "VERSION_RE",
    "checkpoints_dir",
    "current_version",
    "default_store_dir",
    "host_tag",
    "is_version_id",
    "job_files_dir",
    "job_log_path",
    "jobs_db_path",
    "jobs_dir",
    "latest_path",
    "lock_path",
    "new_version_id",
    "owner_tag",
    "parse_owner",
    "pins_dir",
    "read_latest",
    "resolve",
    "runner_lock_path",
    "tmp_name",
    "tmp_owner",
    "version_ids",
    "version_time",
    "versions_dir",
]

STORE_ENV = "SHARDLENS_STORE_DIR"
DEFAULT_STORE = Path("var/store")
DATA_ENV = "SHARDLENS_DATA_DIR"
DEFAULT_DATA = Path("var/data")

VERSION_RE = re.compile(r"^\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{4}$")
_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"
TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
LATEST = "latest"


def default_store_dir(settings: StoreSettings | None = None) -> Path:
    """`$SHARDLENS_STORE_DIR` (or its line in `.env`), or `./var/store`."""
    value = ((settings or StoreSettings()).store_dir or "").strip()
    return Path(value) if value else DEFAULT_STORE


def versions_dir(store: Path) -> Path:
    return store / "versions"


def pins_dir(store: Path) -> Path:
    return store / "pins"


def lock_path(store: Path) -> Path:
    return store / ".lock"


def latest_path(store: Path) -> Path:
    return store / LATEST


def checkpoints_dir(store: str | Path) -> Path:
    """`<store>/checkpoints/`: one folder per training run (its run key, or the job id)."""
    return Path(store) / "checkpoints"


def jobs_db_path(store: str | Path) -> Path:
    """The job database of this store."""
    return Path(store) / "jobs.sqlite3"


def jobs_dir(store: str | Path) -> Path:
    """Job logs, the runner lock and cluster jobs' files."""
    return Path(store) / "jobs"


def job_log_path(store: str | Path, job_id: str) -> Path:
    return jobs_dir(store) / f"{job_id}.log"


def runner_lock_path(store: str | Path) -> Path:
    return jobs_dir(store) / "runner.lock"


def job_files_dir(store: str | Path, job_id: str) -> Path:
    """A cluster job's batch script, progress lines and outcome file."""
    return jobs_dir(store) / job_id


def is_version_id(name: str) -> bool:
    return bool(VERSION_RE.match(name))


def version_time(version: str) -> datetime:
    """The UTC time encoded in a version id."""
    return datetime.strptime(version.split("-")[0], _TIME_FORMAT).replace(tzinfo=UTC)


def new_version_id(*, after: str | None = None, now: datetime | None = None) -> str:
    """A fresh id `YYYYmmddTHHMMSS.ffffffZ-xxxx` that sorts after `after` (clock skew safe)."""
    moment = now or datetime.now(UTC)
    if after is not None and moment <= version_time(after):
        moment = version_time(after) + timedelta(microseconds=1)
    return f"{moment.strftime(_TIME_FORMAT)}-{os.urandom(2).hex()}"


def host_tag() -> str:
    """This machine (container) in a form safe for file names."""
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


def owner_tag() -> str:
    """`<pid>-<host>-<hex>`: who holds a temp folder or a pin, unique per call."""
    return f"{os.getpid()}-{host_tag()}-{os.urandom(4).hex()}"


def parse_owner(tag: str) -> tuple[int, str] | None:
    """(pid, host) of an owner tag (None when `tag` is not one)."""
    match = re.match(r"^(\d+)-([A-Za-z0-9]*)-[0-9a-f]+$", tag)
    return (int(match.group(1)), match.group(2)) if match else None


def tmp_name() -> str:
    """Name of a temporary version folder; it names its writer for gc."""
    return TMP_PREFIX + owner_tag()


def tmp_owner(name: str) -> tuple[int, str] | None:
    """(pid, host) of a temporary folder's writer (None when `name` is not one)."""
    return parse_owner(name[len(TMP_PREFIX) :]) if name.startswith(TMP_PREFIX) else None


def version_ids(store: Path) -> list[str]:
    """Ids of the complete versions in the store, oldest first (temp and trash folders skipped)."""
    try:
        names = os.listdir(versions_dir(store))
    except FileNotFoundError:
        return []
    return sorted(n for n in names if is_version_id(n) and (versions_dir(store) / n).is_dir())


def read_latest(store: Path) -> str | None:
    """The id the `latest` pointer names (None when there is no valid pointer)."""
    try:
        text = latest_path(store).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return text if is_version_id(text) else None


def current_version(store: Path) -> str | None:
    """The `latest` version: the pointer's target, or the newest version if the pointer is
    missing or dangling (e.g. a publisher died between renaming its folder and the pointer)."""
    pointed = read_latest(store)
    if pointed is not None and (versions_dir(store) / pointed).is_dir():
        return pointed
    ids = version_ids(store)
    return ids[-1] if ids else None


def resolve(store: Path, version: str) -> str:
    """A concrete version id for `version` ("latest" or an id); typed errors when absent."""
    from storage.errors import TRAIN_HINT, NoPosteriorError, VersionNotFoundError

    if version == LATEST:
        found = current_version(store)
        if found is None:
            raise NoPosteriorError(
                f"the posterior store {store} holds no version yet: {TRAIN_HINT}"
            )
        return found
    if not is_version_id(version):
        raise VersionNotFoundError(
            f"{version!r} is not a version id (expected e.g. 20261127T073000.123456Z-1a2b, "
            "or 'latest'); `python -m storage list` shows the versions"
        )
    if not (versions_dir(store) / version).is_dir():
        raise VersionNotFoundError(
            f"version {version} is not in the store {store}; "
            "`python -m storage list` shows the versions"
        )
    return version
