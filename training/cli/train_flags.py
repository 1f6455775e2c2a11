"""The flags of `python -m training train` and `evaluate` (argparse only): the preset's
overrides, where the run keeps its work, multi-process settings, data and gate flags."""

from __future__ import annotations

import argparse

from training.cli.adaptation_flags import ADAPTATION_OVERRIDES, add_adaptation_arguments
from training.cli.data_flags import add_data_options
from training.cli.gate_flags import add_gate_arguments
from training.config import (
    LIKELIHOODS,
    MATMUL_PRECISIONS,
    PRESETS,
    REDUCTIONS,
)
from training.parallel.distributed import MODES

__all__ = ["OVERRIDES", "add_no_cache", "add_train_arguments"]

# CLI flag -> TrainConfig field (flags left unset keep the preset's value).
OVERRIDES = {
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
