"""The device mesh: one named axis, `users`, over N devices (fake CPU devices when needed)."""

from __future__ import annotations

import os
import re
import sys
import warnings

from training.names import AXIS

__all__ = [
    "MeshError",
    "make_mesh",
    "padded_users",
    "request_cpu_devices",
]

_FLAG = "--xla_force_host_platform_device_count"


class MeshError(ValueError):
    """The requested device count cannot be served."""


def request_cpu_devices(num_devices: int, *, exact: bool = False) -> bool:
    """Ask XLA for `num_devices` fake CPU devices; only possible before JAX is imported.

    Returns True when the flag is (now) set for at least `num_devices` (for exactly that
    many with `exact`, as each process of a multi-process run needs). When JAX is already
    imported, nothing can change: warn and return False (`make_mesh` then reports what exists).
    """
    flags = os.environ.get("XLA_FLAGS", "")
    match = re.search(rf"{_FLAG}=(\d+)", flags)
    if match:
        have = int(match.group(1))
        if have == num_devices or (have > num_devices and not exact):
            return True
    if "jax" in sys.modules:
        warnings.warn(
            f"JAX is already imported, so {num_devices} fake CPU devices cannot be created; "
            f"set XLA_FLAGS={_FLAG}={num_devices} before starting Python",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    flags = re.sub(rf"{_FLAG}=\d+", "", flags).strip()
    os.environ["XLA_FLAGS"] = f"{flags} {_FLAG}={num_devices}".strip()
    return True


def make_mesh(num_devices: int):
    """A 1-D `jax.sharding.Mesh` named `users` over the first `num_devices` devices.

    With several processes, the mesh spans every process's devices, ordered by process.
    """
    import jax
    import numpy as np
    from jax.sharding import Mesh

    if num_devices < 1:
        raise MeshError(f"--devices must be at least 1, got {num_devices}")
    devices = jax.devices()
    if len(devices) < num_devices:
        raise MeshError(
            f"asked for {num_devices} devices but only {len(devices)} "
            f"{devices[0].platform} device(s) exist; use --devices {len(devices)} or fewer"
            + (
                f" (on CPU, set XLA_FLAGS={_FLAG}={num_devices} before JAX starts)"
                if devices[0].platform == "cpu"
                else ""
            )
        )
    if jax.process_count() > 1:
        if num_devices != len(devices):
            raise MeshError(
                f"a run over {jax.process_count()} processes uses all their {len(devices)} "
                f"devices; use --devices {len(devices)} or leave --devices out"
            )
        # Each process's devices next to each other: its users form one contiguous block.
        devices = sorted(devices, key=lambda d: (d.process_index, d.id))
    return Mesh(np.array(devices[:num_devices]), (AXIS,))


def padded_users(num_users: int, num_devices: int) -> int:
    """The user count rounded up to a multiple of the device count."""
    return -(-num_users // num_devices) * num_devices
