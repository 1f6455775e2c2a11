"""A fake first-start `python -m training train --preset default` for the server tests: no
JAX; reports progress for `$FAKE_TRAIN_SECONDS` (default 2), then publishes a tiny posterior
into `--store` and reports the job succeeded with its version."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from tests.helpers.app_helpers import publish, tiny_data
from training.run.job_reporting import JobReporter


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--jobs-db", required=True)
    args, _ = parser.parse_known_args()
    print(f"fake first-start training argv: {sys.argv[1:]}", flush=True)
    assert args.preset == "default", args.preset
    reporter = JobReporter(job_id=args.job_id, db_path=args.jobs_db)
    steps = max(1, int(float(os.environ.get("FAKE_TRAIN_SECONDS", "2")) / 0.1))
    for i in range(steps):
        reporter(
            {"phase": "sampling", "iteration": i + 1, "total": steps, "eta_s": 0.1 * (steps - i)}
        )
        time.sleep(0.1)
    published = publish(args.store, tiny_data(num_users=6, num_movies=5))
    reporter.succeeded(published.version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
