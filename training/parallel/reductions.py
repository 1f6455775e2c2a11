"""Cross-device sums whose result does not depend on how devices are spread over processes.

TFP's sharded distributions sum log-densities and the gradients of replicated variables
across devices with `lax.psum`. A psum adds the devices' values in an order chosen by the
collective's implementation: in one process XLA's, across processes gloo's (or NCCL's);
so the same run on 8 devices of one host and on 2 hosts x 4 devices differs in the last
bits, and HMC trajectories then drift apart. With `reduction="ordered"`, every such float
sum instead all-gathers the devices' values and adds them in a fixed pairwise tree in mesh
order: bit-identical results for any process layout, at the price of moving P values
instead of one (P = devices) for each sum, which for the movie-variable gradients is
P x chains x movies x (D + 1) floats per leapfrog step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from tensorflow_probability.substrates.jax.internal import distribute_lib

from training.config import REDUCTIONS

__all__ = [
    "device_sum",
    "ordered_sum",
    "reductions",
]


def ordered_sum(x: jax.Array, axis_name: Any) -> jax.Array:
    """Sum of `x` over the named axis, added pairwise in device order (float dtypes)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        return lax.psum(x, axis_name)  # integer sums are exact in any order
    names = tuple(axis_name) if isinstance(axis_name, (tuple, list)) else (axis_name,)
    if not names:
        return x
    g = lax.all_gather(x, names if len(names) > 1 else names[0], axis=0)  # [P, ...]
    size = g.shape[0]
    width = 1 << (size - 1).bit_length()
    if width != size:
        g = jnp.concatenate([g, jnp.zeros((width - size, *g.shape[1:]), g.dtype)])
    while g.shape[0] > 1:
        g = g[0::2] + g[1::2]
    return g[0]


def device_sum(x: jax.Array, axis_name: Any, kind: str) -> jax.Array:
    """Sum of `x` over the named axis (`x` itself when `axis_name` is None): a `lax.psum`,
    or `ordered_sum` when `kind` is "ordered"."""
    if axis_name is None:
        return x
    return ordered_sum(x, axis_name) if kind == "ordered" else lax.psum(x, axis_name)


class _OrderedLax:
    """`jax.lax` with `psum` replaced by `ordered_sum`."""

    def psum(self, x: Any, axis_name: Any, **_: Any) -> Any:
        return jax.tree.map(lambda leaf: ordered_sum(leaf, axis_name), x)

    def __getattr__(self, name: str) -> Any:
        return getattr(lax, name)


@contextlib.contextmanager
def reductions(kind: str) -> Iterator[None]:
    """While tracing inside this block, TFP's cross-device sums are of `kind`.

    "psum": unchanged. "ordered": `ordered_sum`. Only tracing is affected: wrap the calls
    that trace (first call, `lower`, `eval_shape`) of the mapped functions.
    """
    if kind == "psum":
        yield
        return
    if kind != "ordered":
        raise ValueError(f"unknown reduction {kind!r}; use one of {REDUCTIONS}")
    saved = distribute_lib.lax
    distribute_lib.lax = _OrderedLax()
    try:
        yield
    finally:
        distribute_lib.lax = saved
