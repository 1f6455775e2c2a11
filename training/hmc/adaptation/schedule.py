"""Stan's windowed warmup schedule: fast, slow windows doubling in length, fast.

Stan (``stan/mcmc/windowed_adaptation.hpp``, Stan Reference Manual "HMC algorithm
parameters") splits the adaptation iterations into
- an initial fast buffer (default 75 iterations): step size only;
- slow windows (the first of 25, each following one twice as long, the last stretched to
  the terminal buffer): the chain state of every iteration feeds the variance estimate,
  and at each window's end the mass matrix is updated and step-size adaptation restarts;
- a terminal fast buffer (default 50): step size only, with the final mass matrix.

When the three defaults do not fit, Stan uses 15% / 75% / 10% of the iterations; under 20
iterations it adapts the step size only. This module reproduces that schedule exactly (the
window boundaries are computed by the same counter logic) and turns it into two boolean
tables indexed by iteration, for use inside a compiled loop.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["MIN_WINDOWED_STEPS", "Windows", "stan_windows", "window_flags"]

MIN_WINDOWED_STEPS = 20  # Stan: no metric estimation for num_warmup < 20


class Windows(NamedTuple):
    """A static schedule over ``num_steps`` adaptation iterations.

    ``slow`` lists the slow windows as (first, last) iterations, both inclusive; the mass
    matrix is updated right after the iteration ``last`` of each.
    """

    num_steps: int
    init_buffer: int
    term_buffer: int
    slow: tuple[tuple[int, int], ...]


def stan_windows(
    num_steps: int, *, init_buffer: int = 75, base_window: int = 25, term_buffer: int = 50
) -> Windows:
    """Stan's windows for ``num_steps`` adaptation iterations (a port of
    ``windowed_adaptation::set_window_params`` / ``compute_next_window``).

    Raises ValueError for negative sizes or an empty base window.
    """
    if num_steps < 0 or init_buffer < 0 or term_buffer < 0 or base_window < 1:
        raise ValueError(
            f"window sizes must be non-negative (base window >= 1); got steps {num_steps}, "
            f"buffers {init_buffer}/{term_buffer}, base window {base_window}"
        )
    if num_steps < MIN_WINDOWED_STEPS:
        return Windows(num_steps, num_steps, 0, ())
    if init_buffer + base_window + term_buffer > num_steps:
        init_buffer = int(0.15 * num_steps)
        term_buffer = int(0.1 * num_steps)
        base_window = num_steps - (init_buffer + term_buffer)
    last_slow = num_steps - term_buffer - 1
    size = base_window
    next_end = init_buffer + size - 1
    windows = []
    start = init_buffer
    for counter in range(init_buffer, num_steps - term_buffer):
        if counter != next_end:
            continue
        windows.append((start, counter))
        start = counter + 1
        if next_end == last_slow:
            break
        size *= 2
        next_end = counter + size
        if next_end != last_slow and next_end + 2 * size >= num_steps - term_buffer:
            next_end = last_slow  # the following window would not fit: stretch this one
    return Windows(num_steps, init_buffer, term_buffer, tuple(windows))


def window_flags(windows: Windows, iteration: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(in a slow window, last iteration of a slow window) for a traced ``iteration``.

    Both are False outside [0, num_steps). The tables are compile-time constants.
    """
    n = max(windows.num_steps, 1)
    slow = np.zeros(n, bool)
    end = np.zeros(n, bool)
    for first, last in windows.slow:
        slow[first : last + 1] = True
        end[last] = True
    inside = (iteration >= 0) & (iteration < windows.num_steps)
    index = jnp.clip(iteration, 0, n - 1)
    return inside & jnp.asarray(slow)[index], inside & jnp.asarray(end)[index]
