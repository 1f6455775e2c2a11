"""The server's malloc settings return freed request temporaries to the kernel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys, threading
import numpy as np
if sys.argv[1] == "bounded":
    from app.heap import bound_heap_retention
    assert bound_heap_retention()

def rss_anon_mib():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon"):
            return int(line.split()[1]) // 1024

kept = []

def requests():  # big temporaries freed under a small allocation, as request threads do
    for _ in range(6):
        a = np.ones(3_000_000)
        kept.append(np.ones(10))
        b = np.ones(2_000_000)
        del a, b

before = rss_anon_mib()
threads = [threading.Thread(target=requests) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(rss_anon_mib() - before)
"""


def retained_mib(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_freed_temporaries_are_returned_to_the_kernel():
    default, bounded = retained_mib("default"), retained_mib("bounded")
    assert default > 100  # glibc's default keeps them in the threads' arenas
    assert bounded < 20
