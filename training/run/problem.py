"""The watch matrix as the sampler needs it: this process's rows, padded to a multiple of
the device count, with a mask of the real users (sparse until a device asks for its rows)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from training.config import ConfigError
from training.data import WatchData
from training.parallel.mesh import padded_users

__all__ = ["Problem", "prepare"]


class Problem(NamedTuple):
    """Rows [row_start, row_stop) of the watch matrix padded to a multiple of the device
    count, with their user mask: the whole matrix in a single process, this process's
    block of users in a multi-process run. The rows stay sparse (in `data`) until
    `block` builds one device's rows at a time."""

    data: WatchData
    user_mask: np.ndarray  # bool [rows]
    num_users: int
    num_movies: int
    padded_users: int
    row_start: int = 0
    row_stop: int = 0

    @property
    def shape(self) -> tuple[int, int]:
        """The global (padded) shape of the watch matrix."""
        return (self.padded_users, self.num_movies)

    def block(self, start: int, stop: int) -> np.ndarray:
        """Dense bool rows [start, stop) (inside this problem's rows); padded rows are zeros."""
        if not self.row_start <= start <= stop <= self.row_stop:
            raise ValueError(
                f"rows {start}..{stop} are outside this problem's {self.row_start}..{self.row_stop}"
            )
        return self.data.rows(start, stop)

    @property
    def watch(self) -> np.ndarray:
        """All of this problem's rows, dense (for tests and small data)."""
        return self.block(self.row_start, self.row_stop)


def prepare(data: WatchData, *, num_devices: int, rows: tuple[int, int] | None = None) -> Problem:
    """The padded problem for rows `rows` (default: all); padded rows are zeros, masked.

    Nothing is made dense here: `Segments` builds each device's block of users from the
    sparse watches when it puts them on the device.
    """
    n, m = data.num_users, data.num_movies
    if n < num_devices:
        raise ConfigError(
            f"the data has {n} users, fewer than --devices {num_devices}; use fewer devices"
        )
    n_pad = padded_users(n, num_devices)
    lo, hi = (0, n_pad) if rows is None else rows
    if not 0 <= lo <= hi <= n_pad:
        raise ValueError(f"rows {rows} outside the padded matrix of {n_pad} users")
    return Problem(
        data=data,
        user_mask=np.arange(lo, hi) < n,
        num_users=n,
        num_movies=m,
        padded_users=n_pad,
        row_start=lo,
        row_stop=hi,
    )
