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

from training.cli.adaptation_flags import ADAPTATION_OVERRIDES, add_adaptation_arguments
from training.cli.data_flags import add_data_options, options_from_args
from training.cli.gate_flags import add_gate_arguments, check_run_flags, thresholds_from_args
from training.config import (
    LIKELIHOODS,
    MATMUL_PRECISIONS,
    PRESETS,
    REDUCTIONS,
    ConfigError,
    preset,
)
from training.data import DataError
from training.parallel.distributed import MODES, Cluster, DistributedError, cluster_from
from training.parallel.mesh import MeshError
from training.run.checkpoint import CheckpointError
from training.run.gate import (
    PUBLISH_REFUSED_EXIT_CODE,
    PublishRefused,
    assess,
)
from training.run.run_summary import format_diagnostics, run_summary
from training.settings import RunSettings, run_settings

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
    "reduction": "reduction",
    **ADAPTATION_OVERRIDES,
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
    p.add_argument(
        "--outcome-file",
        help="write the final status here as JSON instead of to a job database (set by the "
        "Slurm job backend: cluster nodes do not share the server's SQLite database)",
    )
    p.set_defaults(handler=cmd_train)


def add_no_cache(p: argparse.ArgumentParser) -> None:
    """`--no-cache`: decode a tfds source again, without reading or writing its cache."""
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="tfds sources: decode the prepared dataset again, neither reading nor writing "
        "the cache of its parsed watch data",
    )


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The flags shared by `train` and `evaluate`."""
    p.add_argument(
        "--preset", default="default", choices=sorted(PRESETS), help="(default: default)"
    )
    p.add_argument(
        "--data",
        help="data source: synthetic[:users=N,...] | ml-1m | ml-25m | ... | PATH to a "
        "MovieLens zip/folder or an interactions .csv/.tsv/.parquet | tfds:movielens/1m-ratings "
        "(docs/data-sources.md)",
    )
    p.add_argument(
        "--data-root",
        help="folder holding named datasets and the tfds cache (env SHARDLENS_DATA_DIR, "
        "default var/data)",
    )
    add_no_cache(p)
    p.add_argument("--devices", type=int, help="devices on the mesh (fake CPU devices on CPU)")
    p.add_argument(
        "--store",
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
        "--reduction",
        choices=REDUCTIONS,
        help="cross-device sums: psum (fastest) or ordered (samples bit-identical however "
        "the devices are split over processes)",
    )
    add_adaptation_arguments(p)
    p.add_argument(
        "--progress-jsonl",
        help="append one JSON progress line per segment here (env SHARDLENS_PROGRESS_JSONL)",
    )
    p.add_argument("--json", action="store_true", help="print the final summary as JSON")
    p.add_argument(
        "--stop-after",
        type=int,
        help="stop at the first segment boundary at or past this iteration, keeping the "
        "checkpoint (continue with --resume); publishes nothing",
    )
    p.add_argument(
        "--segment-timeout",
        type=float,
        help="exit (code 3) when one segment takes longer than this many seconds "
        "(bounds a run whose peer process is stuck)",
    )
    add_data_options(p)
    add_gate_arguments(p)
    _add_distributed(p)


def _add_distributed(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "multi-process runs",
        "Run the same command once per process (host); the mesh spans every process's "
        "devices. Settings: flags, else SHARDLENS_* or JAX_* environment variables.",
    )
    g.add_argument(
        "--distributed",
        choices=MODES,
        help="on: join the run given by the settings below; auto: let JAX detect them "
        "(TPU pod slice, SLURM, Open MPI); off: one process (default: on when any setting "
        "below is given)",
    )
    g.add_argument(
        "--coordinator-address",
        help="HOST:PORT of process 0 (env SHARDLENS_COORDINATOR_ADDRESS or JAX_COORDINATOR_ADDRESS)",
    )
    g.add_argument(
        "--num-processes",
        type=int,
        help="processes in the run (env SHARDLENS_NUM_PROCESSES or JAX_NUM_PROCESSES)",
    )
    g.add_argument(
        "--process-id",
        type=int,
        help="this process, 0..num-processes-1 (env SHARDLENS_PROCESS_ID or JAX_PROCESS_ID)",
    )
    g.add_argument(
        "--local-devices",
        type=int,
        help="fake CPU devices per process, CPU only (env SHARDLENS_LOCAL_DEVICES; "
        "default --devices / --num-processes)",
    )
    g.add_argument(
        "--heartbeat-timeout",
        type=int,
        default=100,
        help="seconds after which a silent process counts as dead and the run ends (default 100)",
    )
    g.add_argument(
        "--init-timeout",
        type=int,
        default=300,
        help="seconds to wait for every process to join (default 300)",
    )
    g.add_argument(
        "--shutdown-timeout",
        type=int,
        default=300,
        help="seconds a finished process waits for the others to finish (default 300)",
    )


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
    return base.replace(**{field: getattr(args, flag) for flag, field in _OVERRIDES.items()})


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
        from training.data import load_source
        from training.run.fit import fit_and_publish

        data = load_source(
            config.data,
            data_root=run.data_root,
            options=options_from_args(args),
            store=run.store,
            use_cache=run.use_cache,
        )
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
