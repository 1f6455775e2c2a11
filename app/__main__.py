"""`python -m app` / `shardlens-serve`: serve recommendations."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    # The server lands with the API issue; until then, show the embedded default data.
    from training.cli import main as training_main

    return training_main(["data", "synthetic"])


if __name__ == "__main__":
    sys.exit(main())
