"""Running over many devices and processes: the mesh, multi-host arrays, device-order
reductions and the `jax.distributed` start."""
