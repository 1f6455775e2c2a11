"""The FastAPI service that serves posterior-based recommendations.

The server runs one small NumPy computation per request thread, so BLAS gets one thread:
OpenBLAS's own worker threads spin-wait, and on a busy machine that made the load-time
precomputation five times slower. Set these variables yourself to override.
"""

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
