"""Print the import graph between the project's packages and stages (grimp, the graph library
import-linter uses), to check it against docs/LAYOUT.md's rules by eye:

    .venv/bin/python scripts/import_graph.py

One line per package (a `training` or `app` sub-package counts as its own node; `training`'s
top-level modules config, names and run_settings as one): the nodes it imports directly.
"""

from __future__ import annotations

from collections import defaultdict

import grimp

PACKAGES = ("common", "training", "storage", "app")
TRAINING_BASE = ("config", "names", "run_settings")


def node(module: str) -> str:
    """The graph node of a module: its package, or its stage inside training and app."""
    parts = module.split(".")
    if parts[0] == "training" and len(parts) == 2 and parts[1] in TRAINING_BASE:
        return "training.(" + ",".join(TRAINING_BASE) + ")"
    if parts[0] in ("training", "app") and len(parts) > 2:
        return ".".join(parts[:2])
    if parts[0] == "training" and len(parts) == 2:
        return module
    return parts[0]


def main() -> None:
    graph = grimp.build_graph(*PACKAGES)
    edges: dict[str, set[str]] = defaultdict(set)
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            a, b = node(module), node(imported)
            if a != b:
                edges[a].add(b)
    for source in sorted(edges):
        print(f"{source:38s} -> {', '.join(sorted(edges[source]))}")


if __name__ == "__main__":
    main()
