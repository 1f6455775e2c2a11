"""`python -m training train`: preset + flags -> one published posterior version.

JAX is imported only after `--devices` is known, so fake CPU devices can still be requested.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from typing import Any

from training.checkpoint import CheckpointError
from training.config import LIKELIHOODS, MATMUL_PRECISIONS, PRESETS, ConfigError, preset
from training.data import DataError
from training.mesh import MeshError

# CLI flag -> TrainConfig field (flags left unset keep the preset's value).
_OVERRIDES = {
    "data": "data",
    "devices": "devices",
    "num_chains": "num_chains",
    "num_leapfrog_steps": "num_leapfrog_steps",
    "step_size": "step_size",
    "num_burnin_steps": "num_burnin_steps",
    "num_results": "num_results",
    "latent_dim": "latent_dim",
    "prior_scale": "prior_scale",
    "adaptation_share": "adaptation_share",
    "seed": "seed",
    "segment_size": "segment_size",
    "matmul_precision": "matmul_precision",
    "likelihood": "likelihood",
}


def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="fit the model with sharded HMC and publish a posterior version",
        description="Fit Bayesian matrix factorization with sharded HMC and publish the "
        "samples to the posterior store. A preset sets defaults; every flag overrides it.",
    )
    add_train_arguments(p)
    p.add_argument(
        "--job-id",
        help="report progress and the final status to this job record (set by the job runner)",
    )
    p.add_argument("--jobs-db", help="job database for --job-id (default: <store>/jobs.sqlite3)")
    p.set_defaults(handler=cmd_train)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The flags shared by `train` and `evaluate`."""
    p.add_argument(
        "--preset", default="default", choices=sorted(PRESETS), help="(default: default)"
    )
    p.add_argument("--data", help="data source: synthetic[:users=N,...] | ml-1m | ml-100k | PATH")
    p.add_argument(
        "--data-root",
        default=os.environ.get("SHARDLENS_DATA_DIR", "var/data"),
        help="folder holding named datasets (env SHARDLENS_DATA_DIR)",
    )
    p.add_argument("--devices", type=int, help="devices on the mesh (fake CPU devices on CPU)")
    p.add_argument(
        "--store",
        default=os.environ.get("SHARDLENS_STORE_DIR", "var/store"),
        help="posterior store folder (env SHARDLENS_STORE_DIR, default var/store)",
    )
    p.add_argument("--resume", action="store_true", help="continue from this run's checkpoint")
    p.add_argument("--run-id", help="checkpoint folder name (default: config+data fingerprint)")
    p.add_argument(
        "--keep-checkpoint",
        action="store_true",
        help="keep <store>/checkpoints/<run-key>/ after publishing (deleted by default)",
    )
    p.add_argument("--num-chains", type=int)
    p.add_argument("--num-leapfrog-steps", type=int)
    p.add_argument("--step-size", type=float)
    p.add_argument("--num-burnin-steps", type=int)
    p.add_argument("--num-results", type=int)
    p.add_argument("--latent-dim", type=int)
    p.add_argument("--prior-scale", type=float)
    p.add_argument("--adaptation-share", type=float, help="share of burn-in that adapts")
    p.add_argument("--seed", type=int)
    p.add_argument("--segment-size", type=int, help="iterations per compiled segment")
    p.add_argument("--matmul-precision", choices=MATMUL_PRECISIONS)
    p.add_argument("--likelihood", choices=LIKELIHOODS)
    p.add_argument(
        "--progress-jsonl",
        default=os.environ.get("SHARDLENS_PROGRESS_JSONL"),
        help="append one JSON progress line per segment here (env SHARDLENS_PROGRESS_JSONL)",
    )
    p.add_argument("--json", action="store_true", help="print the final summary as JSON")


def config_from_args(args: argparse.Namespace):
    """The preset with every given flag applied."""
    base = preset(args.preset)
    return base.replace(**{field: getattr(args, flag) for flag, field in _OVERRIDES.items()})


def _summary(version: str, result) -> dict[str, Any]:
    d = result.diagnostics
    return {
        "version": version,
        "data": result.data.source,
        "users": result.data.num_users,
        "movies": result.data.num_movies,
        "config": result.config.as_dict(),
        "shapes": {k: list(v.shape) for k, v in result.samples.items()},
        "diagnostics": d,
    }


def configure(args: argparse.Namespace):
    """Validate the run's config and, before JAX is imported, request fake CPU devices."""
    from training.mesh import request_cpu_devices

    config = config_from_args(args).validate()
    if config.devices > 1:
        request_cpu_devices(config.devices)
    return config


def fit_and_publish(
    args: argparse.Namespace,
    config,
    data,
    *,
    extra_files: Callable[[Any], Mapping[str, bytes]] | None = None,
    extra_progress: Callable[[dict[str, Any]], None] | None = None,
):
    """Train on `data`, publish the result (with `extra_files(result)`), drop the checkpoint.

    Returns (version id, TrainResult).
    """
    from training.checkpoint import checkpoint_dir, run_key
    from training.output import save_result
    from training.progress import ConsolePrinter, JsonlWriter, fan_out
    from training.train import train

    progress = fan_out(
        [
            ConsolePrinter(),
            JsonlWriter(args.progress_jsonl) if args.progress_jsonl else None,
            extra_progress,
        ]
    )
    result = train(
        config,
        data,
        store_dir=args.store,
        resume=args.resume,
        run_id=args.run_id,
        progress=progress,
    )
    assert result is not None
    progress(
        {
            "phase": "saving",
            "iteration": config.total_iterations,
            "total": config.total_iterations,
            "leapfrog_per_s": None,
            "acceptance": None,
            "step_size": None,
            "eta_s": None,
        }
    )
    version = save_result(
        args.store, result, extra_files=extra_files(result) if extra_files else None
    )
    if not args.keep_checkpoint:
        shutil.rmtree(
            checkpoint_dir(args.store, run_key(result.fingerprint, args.run_id)), ignore_errors=True
        )
    return version, result


# Exceptions a user can cause: exit code 2 with the message.
USER_ERRORS: tuple[type[Exception], ...] = (ConfigError, DataError, MeshError, CheckpointError)


def cmd_train(args: argparse.Namespace) -> int:
    from training.job_progress import INTERRUPTED_EXIT_CODE, JobInterrupted, reporter_for

    # With --job-id (the server's job runner): progress and the final status go to the job
    # record, and SIGTERM stops the run at the next segment boundary.
    reporter = reporter_for(args.job_id, db_path=args.jobs_db, store_dir=args.store)
    try:
        config = configure(args)
        from training.data import load_source

        data = load_source(config.data, data_root=args.data_root)
        version, result = fit_and_publish(args, config, data, extra_progress=reporter)
        if reporter is not None:
            reporter.succeeded(version)
    except JobInterrupted as e:
        print(f"stopped: {e}; nothing was published", file=sys.stderr)
        return INTERRUPTED_EXIT_CODE
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        if reporter is not None:
            reporter.failed(str(e))
        return 2
    except Exception as e:
        if reporter is not None:
            reporter.failed(f"{type(e).__name__}: {e}")
        raise
    summary = _summary(version, result)
    if args.json:
        print(json.dumps(summary, default=float))
    else:
        d = summary["diagnostics"]
        print(f"published version {version} to {args.store}")
        print(
            f"  acceptance {d.get('mean_acceptance')}  step size {d.get('final_step_size')}  "
            f"leapfrog/s {d.get('leapfrog_per_s')}  wall {d.get('wall_seconds')} s"
        )
        print(f"  log-likelihood {d.get('log_likelihood')}")
        print(f"  pair logits {d.get('pair_logits')}")
    return 0
