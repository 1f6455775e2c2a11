"""Multi-process runs on JAX's own distributed runtime (TPU pod slices, GPU clusters, CPUs).

Every process runs the same `python -m training train` command; `jax.distributed.initialize`
connects them through a coordinator (process 0) and the device mesh then spans all their
devices. Settings come from flags, else `SHARDLENS_*` environment variables, else JAX's own
names (`JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`). With `auto`, JAX
detects them itself (Cloud TPU pod slices, SLURM, Open MPI).

Failure handling is JAX's: each process sends heartbeats to the coordinator; when one stops
(the process died, or its host did), the runtime terminates every other process within
about `heartbeat_timeout_s`, so a job never hangs on a dead peer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ENV",
    "MODES",
    "Cluster",
    "DistributedError",
    "Mode",
    "cluster_from",
    "initialize",
    "is_primary",
    "process_count",
    "process_index",
]

Mode = Literal["off", "on", "auto"]
MODES: tuple[str, ...] = ("off", "on", "auto")

# setting -> environment variables, the first one set wins
ENV = {
    "coordinator_address": ("SHARDLENS_COORDINATOR_ADDRESS", "JAX_COORDINATOR_ADDRESS"),
    "num_processes": ("SHARDLENS_NUM_PROCESSES", "JAX_NUM_PROCESSES"),
    "process_id": ("SHARDLENS_PROCESS_ID", "JAX_PROCESS_ID"),
    "local_devices": ("SHARDLENS_LOCAL_DEVICES",),
}


class DistributedError(ValueError):
    """The multi-process settings are incomplete or inconsistent; the message says which."""


@dataclass(frozen=True, kw_only=True)
class Cluster:
    """How this process joins a multi-process run (`mode="off"`: a single process)."""

    mode: Mode = "off"
    coordinator_address: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    local_devices: int | None = None  # fake CPU devices per process (CPU only)
    heartbeat_timeout_s: int = 100
    init_timeout_s: int = 300
    shutdown_timeout_s: int = 300

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def validate(self) -> Cluster:
        if self.mode not in MODES:
            raise DistributedError(f"--distributed {self.mode!r} unknown; use one of {MODES}")
        for name in ("heartbeat_timeout_s", "init_timeout_s", "shutdown_timeout_s"):
            if getattr(self, name) < 1:
                flag = "--" + name.removesuffix("_s").replace("_", "-")
                raise DistributedError(f"{flag} must be at least 1 second")
        if self.local_devices is not None and self.local_devices < 1:
            raise DistributedError(f"--local-devices must be at least 1, got {self.local_devices}")
        if self.mode != "on":
            return self
        missing = [
            "--" + name.replace("_", "-") + f" (env {ENV[name][0]} or {ENV[name][-1]})"
            for name in ("coordinator_address", "num_processes", "process_id")
            if getattr(self, name) is None
        ]
        if missing:
            raise DistributedError(
                "a multi-process run needs " + ", ".join(missing) + "; or use "
                "--distributed auto on a TPU pod slice or under SLURM / Open MPI"
            )
        assert self.num_processes is not None and self.process_id is not None
        if self.num_processes < 1 or not 0 <= self.process_id < self.num_processes:
            raise DistributedError(
                f"--process-id must be in [0, --num-processes) = [0, {self.num_processes}), "
                f"got {self.process_id}"
            )
        return self


def _int(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise DistributedError(f"{name} must be an integer, got {value!r}") from None


def cluster_from(
    *,
    mode: str | None = None,
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_devices: int | None = None,
    heartbeat_timeout_s: int = 100,
    init_timeout_s: int = 300,
    shutdown_timeout_s: int = 300,
    environ: Mapping[str, str] | None = None,
) -> Cluster:
    """Flags first, then the environment. `mode=None`: "on" when any setting is given."""
    env = os.environ if environ is None else environ

    def from_env(name: str) -> str | None:
        return next((env[k] for k in ENV[name] if env.get(k)), None)

    address = coordinator_address or from_env("coordinator_address")
    processes = (
        num_processes
        if num_processes is not None
        else _int(from_env("num_processes"), "JAX_NUM_PROCESSES")
    )
    pid = process_id if process_id is not None else _int(from_env("process_id"), "JAX_PROCESS_ID")
    local = (
        local_devices
        if local_devices is not None
        else _int(from_env("local_devices"), "SHARDLENS_LOCAL_DEVICES")
    )
    if mode is None:
        mode = "on" if any(v is not None for v in (address, processes, pid)) else "off"
    return Cluster(
        mode=mode,  # type: ignore[arg-type]
        coordinator_address=address,
        num_processes=processes,
        process_id=pid,
        local_devices=local,
        heartbeat_timeout_s=heartbeat_timeout_s,
        init_timeout_s=init_timeout_s,
        shutdown_timeout_s=shutdown_timeout_s,
    ).validate()


def initialize(cluster: Cluster) -> None:
    """Join the run: call before anything touches JAX devices. No-op for `mode="off"`.

    On CPU, cross-process collectives use gloo over TCP.
    """
    if not cluster.enabled:
        return
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    timeouts = {
        "initialization_timeout": cluster.init_timeout_s,
        "heartbeat_timeout_seconds": cluster.heartbeat_timeout_s,
        "shutdown_timeout_seconds": cluster.shutdown_timeout_s,
    }
    try:
        if cluster.mode == "auto":
            jax.distributed.initialize(**timeouts)  # type: ignore[arg-type]
        else:
            jax.distributed.initialize(
                coordinator_address=cluster.coordinator_address,
                num_processes=cluster.num_processes,
                process_id=cluster.process_id,
                **timeouts,  # type: ignore[arg-type]
            )
    except (ValueError, RuntimeError) as e:  # JAX's own: no cluster found, timeouts
        hint = (
            "no TPU pod, SLURM or Open MPI environment was detected; give "
            "--coordinator-address, --num-processes and --process-id"
            if cluster.mode == "auto"
            else f"check that every process was started within --init-timeout "
            f"({cluster.init_timeout_s} s) and can reach {cluster.coordinator_address}"
        )
        raise DistributedError(f"could not join the multi-process run ({e}); {hint}") from e


def process_index() -> int:
    import jax

    return jax.process_index()


def process_count() -> int:
    import jax

    return jax.process_count()


def is_primary() -> bool:
    """Process 0: the one that writes the posterior, job progress and the console."""
    return process_index() == 0
