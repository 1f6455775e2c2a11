"""A wall-clock limit on one stretch of work: exit the process when it is exceeded.

JAX's distributed runtime ends every process when a peer stops sending heartbeats (it
died). A peer that is alive but stuck (a hung filesystem, a wedged device) keeps sending
them, so a collective waiting on it would wait forever; this limit bounds that too.
"""

from __future__ import annotations

import os
import sys
import threading
from types import TracebackType

__all__ = [
    "EXIT_CODE",
    "Watchdog",
]

EXIT_CODE = 3  # the process exceeded a wall-clock limit


class Watchdog:
    """`with Watchdog(seconds, what="segment 40..60"):` exits with `EXIT_CODE` on overrun.

    `seconds=None` disables it. The exit is immediate (`os._exit`): a thread blocked in a
    collective cannot be interrupted, and nothing half-done must be published.
    """

    def __init__(self, seconds: float | None, *, what: str) -> None:
        self.seconds = seconds
        self.what = what
        self._timer: threading.Timer | None = None

    def _fire(self) -> None:
        print(
            f"error: {self.what} did not finish within {self.seconds} s (--segment-timeout); "
            "a peer process is probably stuck or gone. Exiting; resume with --resume.",
            file=sys.stderr,
            flush=True,
        )
        os._exit(EXIT_CODE)

    def __enter__(self) -> Watchdog:
        if self.seconds is not None:
            self._timer = threading.Timer(self.seconds, self._fire)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
