"""Slurm's client commands (sbatch, scontrol, sacct, scancel), run with a time limit; every
failure becomes a `SlurmCommandError` carrying Slurm's own message."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from app.jobs.launchers.slurm_state import SACCT_FORMAT, SlurmJob, parse_sacct, parse_scontrol

__all__ = ["SlurmClient", "SlurmCommandError"]

# What scontrol says about a job id it does not know (any more).
_UNKNOWN_JOB = "Invalid job id specified"


class SlurmCommandError(Exception):
    """A Slurm command failed; the message holds the command and Slurm's own words."""


class SlurmClient:
    """Runs Slurm's client commands from `bin_dir` (default: PATH) with `env` (plus
    SLURM_CONF=`conf` when given), each within `timeout_s`."""

    def __init__(
        self,
        *,
        bin_dir: str | Path | None = None,
        conf: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout_s: float = 60.0,
    ):
        self.bin_dir = Path(bin_dir) if bin_dir else None
        self.env = dict(os.environ if env is None else env)
        if conf is not None:
            self.env["SLURM_CONF"] = str(conf)
        self.timeout_s = timeout_s

    def run(self, command: str, *args: str) -> str:
        """stdout of `command args...`; raises `SlurmCommandError` when it cannot run, runs
        too long or fails."""
        program = str(self.bin_dir / command) if self.bin_dir else command
        try:
            done = subprocess.run(
                [program, *args],
                capture_output=True,
                text=True,
                env=self.env,
                timeout=self.timeout_s,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            where = f"in {self.bin_dir}" if self.bin_dir else "on PATH"
            raise SlurmCommandError(
                f"the Slurm command {command!r} was not found {where}; install Slurm's client "
                "commands on the server's host (Debian: slurm-client) with a munge key of the "
                "cluster, or set SHARDLENS_SLURM__BIN_DIR"
            ) from None
        except subprocess.TimeoutExpired:
            raise SlurmCommandError(
                f"{command} {' '.join(args)} did not answer within {self.timeout_s:.0f} s "
                "(is the Slurm controller reachable?)"
            ) from None
        except OSError as exc:
            raise SlurmCommandError(f"{command} could not run: {exc}") from None
        if done.returncode != 0:
            said = (done.stderr.strip() or done.stdout.strip() or "no message").splitlines()
            raise SlurmCommandError(f"{command} failed (exit {done.returncode}): {' '.join(said)}")
        return done.stdout

    def submit(self, script: str | Path) -> str:
        """Submit a batch script; returns the Slurm job id."""
        out = self.run("sbatch", "--parsable", str(script)).strip()
        job_id = out.splitlines()[-1].split(";")[0].strip() if out else ""
        if not job_id.isdigit():
            raise SlurmCommandError(f"sbatch answered {out!r}, not a job id")
        return job_id

    def show_job(self, job_id: str) -> SlurmJob | None:
        """`scontrol show job -o`; None when the controller does not know the job (it
        forgets finished jobs MinJobAge seconds after they end)."""
        try:
            out = self.run("scontrol", "show", "job", "-o", job_id)
        except SlurmCommandError as exc:
            if _UNKNOWN_JOB in str(exc):
                return None
            raise
        try:
            return parse_scontrol(out)
        except ValueError as exc:
            raise SlurmCommandError(str(exc)) from None

    def accounting(self, job_id: str) -> SlurmJob | None:
        """The job's record in Slurm's accounting (`sacct`); None when there is no
        accounting database or it does not list the job."""
        try:
            out = self.run("sacct", "-X", "-n", "-P", "-o", SACCT_FORMAT, "-j", job_id)
        except SlurmCommandError:
            return None
        return parse_sacct(out, job_id)

    def cancel(self, job_id: str) -> None:
        """`scancel`: Slurm sends SIGTERM, then SIGKILL after its KillWait."""
        self.run("scancel", job_id)
