"""A real single-node Slurm for the tests (`scripts/slurm-local`), started once per test run.

`slurm_cluster` (a session fixture, registered in conftest.py) installs the packages when
they are missing and this is root, starts munged, slurmctld and slurmd with every file in a
temporary folder, and stops exactly those daemons at the end. Where neither the packages nor
root are available the Slurm tests are skipped with the reason, except when
SHARDLENS_REQUIRE_SLURM is set (CI: `.ci/run`), where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "slurm-local"
DAEMONS = ("slurmctld", "slurmd", "munged", "sbatch", "srun", "scontrol")
REQUIRE_ENV = "SHARDLENS_REQUIRE_SLURM"


@dataclass(frozen=True)
class SlurmCluster:
    """A running test cluster: its folder and the slurm.conf its client commands need."""

    folder: Path
    conf: Path

    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *argv: str, check: bool = True) -> str:
        """A Slurm client command against this cluster; its stdout."""
        done = subprocess.run(
            list(argv), env=self.env(), capture_output=True, text=True, timeout=60, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed: {done.stderr or done.stdout}")
        return done.stdout

    def field(self, slurm_id: str, name: str) -> str | None:
        """One field of `scontrol show job -o` (None when the job is unknown)."""
        out = self.run("scontrol", "show", "job", "-o", slurm_id, check=False)
        for token in out.split():
            key, _, value = token.partition("=")
            if key == name:
                return value
        return None


def missing_packages() -> list[str]:
    return [name for name in DAEMONS if shutil.which(name) is None]


def unavailable_reason() -> str | None:
    """Why a local Slurm cannot be had here, or None when it can (installing if needed)."""
    missing = missing_packages()
    if not missing:
        return None
    if os.geteuid() == 0 and shutil.which("apt-get"):
        return None  # scripts/slurm-local install will fetch them
    return (
        f"Slurm is not installed ({', '.join(missing)} missing) and this is not root with "
        "apt-get to install it: run `sudo scripts/slurm-local install` to run the Slurm tests"
    )


def start_cluster(folder: Path) -> SlurmCluster:
    """Install (when needed) and start the cluster in `folder`."""
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{REQUIRE_ENV} is set but the Slurm tests cannot run: {reason}")
        pytest.skip(reason)
    if missing_packages():
        subprocess.run([str(SCRIPT), "install"], check=True, timeout=900)
    done = subprocess.run(
        [str(SCRIPT), "start", str(folder)], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/slurm-local start failed:\n{done.stdout}\n{done.stderr}")
    conf = done.stdout.strip().splitlines()[-1].removeprefix("export SLURM_CONF=")
    return SlurmCluster(folder=folder, conf=Path(conf))


def stop_cluster(cluster: SlurmCluster) -> None:
    subprocess.run([str(SCRIPT), "stop", str(cluster.folder)], check=False, timeout=120)
