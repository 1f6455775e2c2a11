"""A fake `python -m training train` for job runner tests: same flags, no JAX.

`--data fake:MODE[:SECONDS]` (or a path to a file of that name) picks the behaviour: succeed, fail (reports failed), exit (exits 3
without reporting), sigkill (kills itself), sleep (progress every 50 ms for SECONDS, then
succeeds), failonce (fails unless --resume), stubborn (ignores SIGTERM and sleeps).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from training.run.job_reporting import (
    INTERRUPTED_EXIT_CODE,
    JobInterrupted,
    JobReporter,
    install_sigterm_handler,
)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--jobs-db", required=True)
    parser.add_argument("--run-id")
    parser.add_argument("--resume", action="store_true")
    args, _ = parser.parse_known_args()
    print(f"fake training argv: {sys.argv[1:]}", flush=True)
    _, mode, *rest = Path(args.data).name.split(":")
    seconds = float(rest[0]) if rest else 0.2
    reporter = JobReporter(job_id=args.job_id, db_path=args.jobs_db, stop=install_sigterm_handler())
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ignoring SIGTERM", flush=True)
    try:
        steps = max(1, int(seconds / 0.05))
        for i in range(steps):
            if mode in ("sleep", "succeed"):  # stubborn never looks at the cancel flag
                reporter(
                    {"phase": "sampling", "iteration": i + 1, "total": steps,
                     "leapfrog_per_s": 100.0, "acceptance": 0.7, "step_size": 0.01,
                     "eta_s": (steps - i - 1) * 0.05}
                )  # fmt: skip
            time.sleep(0.05)
            if mode == "sigkill":
                os.kill(os.getpid(), signal.SIGKILL)
    except JobInterrupted as e:
        print(f"stopped: {e}", flush=True)
        return INTERRUPTED_EXIT_CODE
    if mode == "fail" or (mode == "failonce" and not args.resume):
        reporter.failed("fake training failed on purpose")
        return 1
    if mode == "exit":
        return 3
    reporter.succeeded(f"fake-{args.job_id[:8]}{'-resumed' if args.resume else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
