"""How much memory a run needs, per device and on the host, known before compiling.

The formula is the README's ("How it scales"), with coefficients fitted to XLA's own
per-device figures (`compiled.memory_analysis()`; `bench/device_memory.py` prints both).
N users, M movies, latent dim D, C chains, P devices, T = segment size, L = ceil(N / P)
users per device, 4-byte floats:

    reference dense  L·M·(11 + 24·C)          bool block, its float32 copy and masks, and
                                              per chain ~6 float32 [L, M] temporaries
    fast dense       L·M·2 + C·B·M·15.4       bool block and its int8 copy; per chain ~3.85
                                              float32 [B, M] temporaries, B = min(L, 256)
    state            6·4·C·(D+1)·(L + M)      state, momentum, proposal, gradients
    draws            T·4·C·(D+1)·(L + M)      one segment's draws, until fetched
    ordered          4·P·C·M·(D+1)            only with --reduction ordered
    gather           64 MiB                   one row chunk, several processes

Host (process 0): the sparse watches (16 bytes each), the posterior it publishes twice over
while it concatenates the segments (2·S·C·(N + M)·(D + 1)·4 bytes), and one device block
while it is put on its device. On CPU the "devices" share the host's memory.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training.config import ConfigError, TrainConfig

__all__ = [
    "MemoryPlan",
    "MemoryPlanError",
    "MemoryWarning",
    "compare_with_xla",
    "device_bytes",
    "host_available_bytes",
    "host_bytes",
    "plan_memory",
]

GATHER_BYTES = 64 * 2**20
FAST_BLOCK = 256  # users per block of the fast likelihood (training.hmc.fast_target)
XLA_TOLERANCE = 0.2  # warn when the formula and XLA differ by more than this share
# Below this many bytes per device, fixed overheads (kernel results, keys, scalars) dominate
# and the formula is not meant to match: no warning.
XLA_COMPARE_FLOOR = 16 * 2**20
BUDGET_ENV = "SHARDLENS_MEMORY_BUDGET"  # override the detected host memory (bytes, or 24G)


class MemoryPlanError(ConfigError):
    """The run does not fit the memory available; the message says what would."""


class MemoryWarning(UserWarning):
    """The formula's estimate and XLA's figures disagree by more than `XLA_TOLERANCE`."""


def device_bytes(
    *, n: int, m: int, d: int, c: int, p: int, t: int, likelihood: str, ordered: bool,
    processes: int = 1,
) -> dict[str, int]:  # fmt: skip
    """Bytes one device needs, by term, and their `total` (see the module doc)."""
    local = -(-n // p)
    if likelihood == "reference":
        dense = local * m * (11 + 24 * c)
    else:
        dense = 2 * local * m + int(c * min(local, FAST_BLOCK) * m * 15.4)
    params = c * (d + 1) * (local + m)
    terms = {
        "dense_blocks": dense,
        "state": 4 * params * 6,
        "draws": 4 * params * t,
        "ordered_gather": 4 * p * c * m * (d + 1) if ordered else 0,
        "row_gather": GATHER_BYTES if processes > 1 else 0,
    }
    return {**terms, "total": sum(terms.values())}


def host_bytes(
    *, n: int, m: int, watches: int, d: int, c: int, s: int, p: int, primary: bool = True
) -> int:
    """Host bytes of one process besides its devices: the sparse watches, one device block
    while it is placed, and on process 0 the posterior (twice, while concatenating)."""
    block = -(-n // p) * m
    posterior = 2 * s * c * (n + m) * (d + 1) * 4 if primary else 0  # kept + concatenated
    return 16 * watches + block + posterior


@dataclass(frozen=True)
class MemoryPlan:
    """What a run needs and has, in bytes. `available_*` are None when unknown."""

    users: int
    movies: int
    watches: int
    density: float
    devices: int
    processes: int
    local_devices: int
    platform: str
    likelihood: str
    per_device: dict[str, int]
    host: int
    available_device: int | None
    available_host: int | None

    @property
    def host_total(self) -> int:
        """This host's need: on CPU its devices live in host memory too."""
        on_host = self.local_devices * self.per_device["total"] if self.platform == "cpu" else 0
        return self.host + on_host

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "host_total": self.host_total}

    def describe(self) -> str:
        """Two lines for the log: the matrix, then memory needed against available."""
        limit = f" of {size(self.available_device)}" if self.available_device else ""
        host = f" of {size(self.available_host)} available" if self.available_host else ""
        where = " (in host memory)" if self.platform == "cpu" else ""
        return (
            f"watch matrix {self.users:,} x {self.movies:,}, {self.watches:,} watches "
            f"(density {self.density:.3%})\n"
            f"memory ({self.likelihood} likelihood, {self.devices} {self.platform} device(s)"
            f"{'' if self.processes == 1 else f', {self.processes} processes'}): "
            f"{size(self.per_device['total'])} per device{limit}{where}; this host "
            f"{size(self.host_total)}{host}"
        )


def size(n: float) -> str:
    """Bytes in binary units: '512 B', '95.3 KiB', '1.25 GiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GiB"


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def parse_bytes(text: str) -> int:
    """'24G', '512MiB', '1000000' -> bytes (ConfigError otherwise)."""
    units = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    cleaned = text.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = cleaned, ""
    if cleaned and cleaned[-1] in units:
        number, unit = cleaned[:-1], cleaned[-1]
    try:
        return int(float(number) * units[unit])
    except ValueError:
        raise ConfigError(f"{BUDGET_ENV}={text!r} is not a size like 24G or 25769803776") from None


def host_available_bytes() -> int | None:
    """Memory this process can still use: `SHARDLENS_MEMORY_BUDGET` when set, else the
    smaller of /proc/meminfo's MemAvailable and the cgroup's limit minus its usage."""
    if os.environ.get(BUDGET_ENV):
        return parse_bytes(os.environ[BUDGET_ENV])
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    limit, used = _read_int("/sys/fs/cgroup/memory.max"), _read_int("/sys/fs/cgroup/memory.current")
    if limit is not None and used is not None:
        found.append(max(0, limit - used))
    return min(found) if found else None


def plan_memory(
    config: TrainConfig, *, users: int, movies: int, watches: int, processes: int,
    local_devices: int, platform: str, available_device: int | None,
    available_host: int | None,
) -> MemoryPlan:  # fmt: skip
    """The plan for `config` on a users x movies matrix with `watches` watches."""
    per_device = device_bytes(
        n=users, m=movies, d=config.latent_dim, c=config.num_chains, p=config.devices,
        t=config.segment_size, likelihood=config.likelihood,
        ordered=config.reduction == "ordered", processes=processes,
    )  # fmt: skip
    host = host_bytes(
        n=users, m=movies, watches=watches, d=config.latent_dim, c=config.num_chains,
        s=config.num_results, p=config.devices,
    )  # fmt: skip
    return MemoryPlan(
        users=users, movies=movies, watches=watches,
        density=watches / max(1, users * movies), devices=config.devices,
        processes=processes, local_devices=min(local_devices, config.devices),
        platform=platform, likelihood=config.likelihood, per_device=per_device, host=host,
        available_device=available_device, available_host=available_host,
    )  # fmt: skip


def _with(plan: MemoryPlan, config: TrainConfig, devices: int, processes: int) -> MemoryPlan:
    return plan_memory(
        config.replace(devices=devices), users=plan.users, movies=plan.movies,
        watches=plan.watches, processes=processes,
        local_devices=max(1, devices // processes), platform=plan.platform,
        available_device=plan.available_device, available_host=plan.available_host,
    )  # fmt: skip


def _fits(plan: MemoryPlan) -> bool:
    if plan.available_device is not None and plan.per_device["total"] > plan.available_device:
        return False
    return plan.available_host is None or plan.host_total <= plan.available_host


def check_fits(plan: MemoryPlan, config: TrainConfig) -> None:
    """Raise `MemoryPlanError` when the run does not fit, saying how many devices (on
    accelerators) or hosts (on CPU, whose devices share a host's memory) would."""
    if _fits(plan):
        return
    device_short = plan.available_device is not None and (
        plan.per_device["total"] > plan.available_device
    )
    need, have = (
        (f"{size(plan.per_device['total'])} per device", size(plan.available_device or 0))
        if device_short
        else (
            f"{size(plan.host_total)} on this host",
            f"{size(plan.available_host or 0)} available",
        )
    )
    local = max(1, plan.local_devices)
    advice = (
        "no number of devices or hosts is enough: the movie terms and the posterior do not shrink"
    )
    for scale in (2**k for k in range(1, 17)):
        if plan.platform == "cpu":  # more hosts, each with as many fake devices as now
            hosts = math.ceil(plan.processes * scale)
            trial = _with(plan, config, local * hosts, hosts)
            if _fits(trial):
                advice = (
                    f"it would fit on {hosts} hosts with this much memory each "
                    f"(--num-processes {hosts}, {local} device(s) each; see docs/data-sources.md)"
                )
                break
        else:
            devices = plan.devices * scale
            trial = _with(plan, config, devices, max(plan.processes, math.ceil(devices / local)))
            if _fits(trial):
                hosts = math.ceil(devices / local)
                advice = f"it would fit on {devices} devices ({hosts} hosts of {local})"
                break
    knobs = ["fewer --num-chains", "a smaller --latent-dim or --segment-size"]
    if config.likelihood != "fast":
        knobs.append("--likelihood fast")
    knobs.append("--min-item-watches / --min-user-watches")
    posterior = posterior_bytes(config, plan.users, plan.movies)
    if plan.available_host is not None and 2 * posterior > plan.available_host / 2:
        knobs.insert(0, f"fewer --num-results (the posterior process 0 keeps is {size(posterior)})")
    raise MemoryPlanError(
        f"this run needs {need} but has {have}: {plan.describe().splitlines()[0]}; {advice}; "
        f"or shrink it: {', '.join(knobs)}"
    )


def posterior_bytes(config: TrainConfig, users: int, movies: int) -> int:
    """Bytes of the published posterior: S·C·(N + M)·(D + 1) float32."""
    return config.num_results * config.num_chains * (users + movies) * (config.latent_dim + 1) * 4


def compare_with_xla(
    plan: MemoryPlan, config: TrainConfig, xla: dict[str, int] | None, *, segment_length: int
) -> dict[str, Any]:
    """The formula for a compiled segment of `segment_length` iterations next to XLA's
    per-device figures for it; a `MemoryWarning` when they differ by more than
    `XLA_TOLERANCE`. The row gather is outside the segment program, so it is left out."""
    terms = device_bytes(
        n=plan.users, m=plan.movies, d=config.latent_dim, c=config.num_chains,
        p=config.devices, t=segment_length, likelihood=config.likelihood,
        ordered=config.reduction == "ordered",
    )  # fmt: skip
    formula = terms["total"]
    out: dict[str, Any] = {"formula_bytes_per_device": formula, "segment_length": segment_length}
    if not xla:
        return out
    measured = xla["arguments"] + xla["outputs"] + xla["temporaries"] - xla["aliased"]
    ratio = formula / max(1, measured)
    out.update({"xla_bytes_per_device": measured, "xla": xla, "formula_over_xla": ratio})
    if abs(ratio - 1.0) > XLA_TOLERANCE and max(formula, measured) >= XLA_COMPARE_FLOOR:
        warnings.warn(
            f"memory per device: the formula says {formula / 2**20:.1f} MiB but XLA's compiled "
            f"program needs {measured / 2**20:.1f} MiB ({ratio:.2f}x); trust XLA's figure",
            MemoryWarning,
            stacklevel=2,
        )
    return out
