"""`python -m storage` / `shardlens-store`: see storage.cli."""

from __future__ import annotations

import sys

from storage.cli import main

if __name__ == "__main__":
    sys.exit(main())
