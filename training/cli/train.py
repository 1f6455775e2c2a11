"""`python -m training train`: preset + flags -> one published posterior version.

JAX is imported only after `--devices` is known, so fake CPU devices can still be requested
(and `jax.distributed.initialize` still be called, for a run over several processes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import traceback

from training.cli.data_flags import load_from_args
from training.cli.gate_flags import check_run_flags, thresholds_from_args
from training.cli.train_flags import OVERRIDES, add_no_cache, add_train_arguments
from training.config import (
    ConfigError,
    preset,
)
from training.data import DataError
from training.parallel.distributed import Cluster, DistributedError, cluster_from
from training.parallel.mesh import MeshError
from training.run.checkpoint import CheckpointError
from training.run.gate import (
    PUBLISH_REFUSED_EXIT_CODE,
    PublishRefused,
    assess,
)
from training.run.run_summary import format_diagnostics, run_summary
from training.run_settings import RunSettings, run_settings

__all__ = [
    "add_no_cache",
    "add_train",
    "add_train_arguments",
    "cluster_from_args",
    "cmd_train",
    "config_from_args",
    "configure",
    "settings_from_args",
    "user_errors",
]


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
    p.add_argument(
        "--outcome-file",
        help="write the final status here as JSON instead of to a job database (set by the "
        "Slurm job backend: cluster nodes do not share the server's SQLite database)",
    )
    p.set_defaults(handler=cmd_train)


def cluster_from_args(args: argparse.Namespace) -> Cluster:
    """The multi-process settings from flags and the environment."""
    cluster = cluster_from(
        mode=args.distributed,
        coordinator_address=args.coordinator_address,
        num_processes=args.num_processes,
        process_id=args.process_id,
        local_devices=args.local_devices,
        heartbeat_timeout_s=args.heartbeat_timeout,
        init_timeout_s=args.init_timeout,
        shutdown_timeout_s=args.shutdown_timeout,
    )
    if cluster.local_devices is None and args.devices and cluster.num_processes:
        if args.devices % cluster.num_processes:
            raise DistributedError(
                f"--devices {args.devices} is not a multiple of --num-processes "
                f"{cluster.num_processes}; give --local-devices"
            )
        cluster = dataclasses.replace(cluster, local_devices=args.devices // cluster.num_processes)
    return cluster


def config_from_args(args: argparse.Namespace):
    """The preset with every given flag applied."""
    base = preset(args.preset)
    return base.replace(**{field: getattr(args, flag) for flag, field in OVERRIDES.items()})


def _start_jax(args: argparse.Namespace, config, cluster: Cluster):
    """Fake CPU devices, then (for several processes) join the run; returns the config with
    `devices` defaulting to every device of every process."""
    from training.parallel.mesh import request_cpu_devices

    if cluster.enabled:
        if cluster.local_devices:
            request_cpu_devices(cluster.local_devices, exact=True)
        from training.parallel.distributed import initialize

        initialize(cluster)
        import jax

        if args.devices is None:
            config = config.replace(devices=jax.device_count())
    elif cluster.local_devices or config.devices > 1:
        request_cpu_devices(max(cluster.local_devices or 1, config.devices))
    return config


def configure(args: argparse.Namespace):
    """Validate the run's config, then (before JAX is imported) request fake CPU devices and,
    for a run over several processes, join it. Returns the config with `devices` filled in."""
    config = config_from_args(args).validate()
    check_run_flags(args)
    cluster = cluster_from_args(args)
    return _start_jax(args, config, cluster).validate()


def _exit_now(code: int) -> int:
    """In a multi-process run, leave at once on failure: waiting in JAX's shutdown barrier
    for peers that are blocked in a collective would only delay the failure; the peers
    stop within the heartbeat timeout instead."""
    if "jax" in sys.modules and _process_count() > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def user_errors() -> tuple[type[Exception], ...]:
    """Exceptions a user can cause: exit code 2 with the message."""
    errors: tuple[type[Exception], ...] = (
        ConfigError,
        DataError,
        MeshError,
        CheckpointError,
        DistributedError,
    )
    if "jax" in sys.modules:  # training.parallel.multihost imports JAX
        from training.parallel.multihost import LayoutError

        errors += (LayoutError,)
    return errors


def settings_from_args(args: argparse.Namespace) -> RunSettings:
    """The run's settings: the flags of `train`/`evaluate` over `SHARDLENS_*` and `.env`."""
    return run_settings(
        store=args.store,
        data_root=args.data_root,
        use_cache=not args.no_cache,
        resume=args.resume,
        run_id=args.run_id,
        keep_checkpoint=args.keep_checkpoint,
        progress_jsonl=args.progress_jsonl,
        stop_after=args.stop_after,
        segment_timeout_s=args.segment_timeout,
        force_publish=args.force_publish,
        job_id=getattr(args, "job_id", None),
        jobs_db=getattr(args, "jobs_db", None),
        outcome_file=getattr(args, "outcome_file", None),
    )


def cmd_train(args: argparse.Namespace) -> int:
    from training.run.job_reporting import (
        INTERRUPTED_EXIT_CODE,
        BoundaryStop,
        JobInterrupted,
        install_sigterm_handler,
        reporter_for,
    )

    # With --job-id (the server's job runner): progress and the final status go to the job
    # record (with --outcome-file: to that file). Always: SIGTERM stops the run at a segment
    # boundary, after its checkpoint (every process at the same one), publishing nothing.
    run = settings_from_args(args)
    reporter = reporter_for(
        run.job_id, db_path=run.jobs_db, store_dir=run.store, outcome_file=run.outcome_file
    )
    try:
        config = configure(args)
        thresholds = thresholds_from_args(args)
        from training.run.fit import fit_and_publish

        data = load_from_args(config.data, run, args)
        version, result = fit_and_publish(
            run,
            config,
            data,
            thresholds=thresholds,
            extra_progress=reporter,
            on_boundary=BoundaryStop(reporter.stop if reporter else install_sigterm_handler()),
        )
        if reporter is not None and version is not None and result is not None:
            reporter.succeeded(version)  # process 0 only (it published)
    except JobInterrupted as e:
        print(f"stopped: {e}; nothing was published", file=sys.stderr)
        return _exit_now(INTERRUPTED_EXIT_CODE)
    except PublishRefused as e:
        message = str(e)
        if reporter is not None:  # a job: resubmitting it is how to force it
            message += ' For a job: submit it again with "force_publish": true.'
            reporter.failed(message)
        print(f"error: {message}", file=sys.stderr)
        return _exit_now(PUBLISH_REFUSED_EXIT_CODE)
    except user_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        if reporter is not None:
            reporter.failed(str(e))
        return _exit_now(2)
    except Exception as e:
        if reporter is not None:
            reporter.failed(f"{type(e).__name__}: {e}")
        traceback.print_exc()
        print(f"unexpected error: {type(e).__name__}: {e}", file=sys.stderr)
        if "jax" in sys.modules and _process_count() > 1:
            print(
                "error: the run failed in process " + _process() + "; when a collective "
                "failed, another process most likely died. Nothing was published; rerun "
                "the same command on every process with --resume.",
                file=sys.stderr,
            )
        return _exit_now(1)
    if version is None:
        print(
            f"stopped before iteration {args.stop_after}; the checkpoint is kept: "
            "continue with --resume",
            file=sys.stderr,
        )
        return 0
    if result is None:
        print(f"process {_process()} done; process 0 published version {version}")
        return 0
    convergence = assess(result.diagnostics, thresholds)
    if args.json:
        print(json.dumps(run_summary(version, result, convergence), default=float))
    else:
        print(f"published version {version} to {run.store}")
        print(format_diagnostics(result.diagnostics, convergence))
    return 0


def _process() -> str:
    import jax

    return f"{jax.process_index()}/{jax.process_count()}"


def _process_count() -> int:
    import jax

    return jax.process_count()
