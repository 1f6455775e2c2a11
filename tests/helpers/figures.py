"""Figures the reliability tests measure (requests sent, failures, kills survived).

When `SHARDLENS_FIGURES` names a file, each `record` appends one JSON line to it; the
figures in docs/RELIABILITY.md come from such a run. Without it, nothing is written.
"""

from __future__ import annotations

import json
import os
from typing import Any


def record(test: str, **figures: Any) -> None:
    """Append `{"test": test, **figures}` to $SHARDLENS_FIGURES (if set)."""
    path = os.environ.get("SHARDLENS_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"test": test, **figures}) + "\n")
