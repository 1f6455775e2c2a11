"""The multi-process building blocks, in one process: settings, blocks, gathers, checkpoints."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from training.cli.main import main
from training.config import SAMPLER_REVISION, TrainConfig, preset
from training.data import SyntheticSpec, generate
from training.names import AXIS
from training.parallel.distributed import Cluster, DistributedError, cluster_from
from training.parallel.mesh import make_mesh, request_cpu_devices
from training.parallel.multihost import (
    agree_max_common,
    broadcast_text,
    chunk_rows,
    gather_to_primary,
    global_array,
    local_block,
    local_rows,
)
from training.parallel.reductions import ordered_sum, reductions
from training.run import checkpoint as ckpt
from training.run.segments import prepare

ROOT = Path(__file__).resolve().parents[3]


def test_flags_win_over_shardlens_env_over_jax_env():
    env = {
        "JAX_COORDINATOR_ADDRESS": "jax:1",
        "JAX_NUM_PROCESSES": "4",
        "JAX_PROCESS_ID": "3",
        "SHARDLENS_COORDINATOR_ADDRESS": "sl:2",
        "SHARDLENS_LOCAL_DEVICES": "2",
    }
    c = cluster_from(process_id=1, environ=env)
    assert (c.mode, c.coordinator_address, c.num_processes, c.process_id) == ("on", "sl:2", 4, 1)
    assert c.local_devices == 2
    assert cluster_from(environ={}).mode == "off"
    assert cluster_from(mode="auto", environ={}).enabled


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"coordinator_address": "h:1", "num_processes": 2}, "--process-id"),
        ({"coordinator_address": "h:1", "num_processes": 2, "process_id": 2}, r"\[0, 2\)"),
        ({"mode": "on"}, "--coordinator-address"),
        ({"mode": "sideways"}, "unknown"),
        ({"heartbeat_timeout_s": 0}, "--heartbeat-timeout"),
        ({"local_devices": 0}, "--local-devices"),
    ],
)
def test_incomplete_or_wrong_settings_are_refused(settings, message):
    with pytest.raises(DistributedError, match=message):
        cluster_from(**settings, environ={})


def test_bad_env_integer_is_refused():
    with pytest.raises(DistributedError, match="JAX_NUM_PROCESSES"):
        cluster_from(environ={"JAX_NUM_PROCESSES": "two"})


@pytest.mark.parametrize(
    "flags",
    [
        ["--coordinator-address", "127.0.0.1:1", "--num-processes", "2"],
        ["--num-processes", "2", "--process-id", "0", "--coordinator-address", "h:1",
         "--devices", "3"],
    ],
)  # fmt: skip
def test_cli_refuses_incomplete_multi_process_settings(flags, tmp_path, capsys):
    code = main(["train", "--preset", "smoke", "--store", str(tmp_path), *flags])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: ")


def test_cli_refuses_an_unknown_reduction(tmp_path):
    with pytest.raises(SystemExit):
        main(["train", "--preset", "smoke", "--store", str(tmp_path), "--reduction", "fuzzy"])


def test_exact_fake_device_request(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
    assert request_cpu_devices(4) is True  # at least 4: enough for one process
    with pytest.warns(RuntimeWarning, match="already imported"):
        assert request_cpu_devices(4, exact=True) is False  # exactly 4 needs a fresh process


def test_a_block_of_users_is_the_same_rows_of_the_whole_matrix():
    data = generate(SyntheticSpec(num_users=37, num_movies=11, latent_dim=2, seed=5))
    whole = prepare(data, num_devices=8)
    assert whole.shape == (40, 11) and whole.watch.shape == (40, 11)
    for lo, hi in [(0, 20), (20, 40), (35, 40), (5, 5)]:
        block = prepare(data, num_devices=8, rows=(lo, hi))
        assert (block.row_start, block.padded_users) == (lo, 40)
        np.testing.assert_array_equal(block.watch, whole.watch[lo:hi])
        np.testing.assert_array_equal(block.user_mask, whole.user_mask[lo:hi])
    with pytest.raises(ValueError, match="outside"):
        prepare(data, num_devices=8, rows=(30, 48))


def test_one_process_holds_every_row_and_gathers_are_plain_copies():
    mesh = make_mesh(8)
    users = NamedSharding(mesh, P(None, AXIS))
    assert local_rows(NamedSharding(mesh, P(AXIS)), (16, 3)) == (0, 16)
    assert local_rows(users, (2, 16), axis=1) == (0, 16)
    x = np.arange(2 * 16 * 3, dtype=np.float32).reshape(2, 16, 3)
    g = global_array(users, x, x.shape)
    np.testing.assert_array_equal(local_block(g), x)
    np.testing.assert_array_equal(gather_to_primary(g, axis=1, max_bytes=8), x)
    assert agree_max_common([20, 40], width=2) == 40 and agree_max_common([], width=2) is None
    assert broadcast_text("v1") == "v1"


def test_chunk_rows_respects_the_byte_budget():
    assert chunk_rows((20, 2, 1000, 8), 4, axis=2, max_bytes=64 * 2**20) == 1000
    assert chunk_rows((20, 2, 1000, 8), 4, axis=2, max_bytes=20 * 2 * 8 * 4 * 7) == 7
    assert chunk_rows((20, 2, 1000, 8), 4, axis=2, max_bytes=1) == 1


def test_ordered_sum_adds_in_mesh_order_and_matches_psum():
    mesh = make_mesh(8)
    x = np.random.default_rng(0).normal(size=(8, 5)).astype(np.float32) * 1e3

    def both(v):
        return ordered_sum(v[0], AXIS)[None], jax.lax.psum(v[0], AXIS)[None]

    ordered, psum = jax.jit(
        jax.shard_map(both, mesh=mesh, in_specs=P(AXIS), out_specs=P(AXIS), check_vma=False)
    )(x)
    pairs = x[0::2] + x[1::2]
    quads = pairs[0::2] + pairs[1::2]
    expected = quads[0] + quads[1]  # the fixed pairwise tree, in numpy's float32
    for row in np.asarray(ordered):
        np.testing.assert_array_equal(row, expected)
    np.testing.assert_allclose(np.asarray(psum)[0], expected, rtol=1e-5)


def test_reductions_context_restores_tfp_and_refuses_unknown_kinds():
    from tensorflow_probability.substrates.jax.internal import distribute_lib

    before = distribute_lib.lax
    with reductions("ordered"):
        assert distribute_lib.lax is not before
    assert distribute_lib.lax is before
    with pytest.raises(ValueError, match="unknown reduction"), reductions("fuzzy"):
        pass


def test_default_reduction_does_not_enter_the_fingerprint():
    config = preset("smoke")
    fields = {k: v for k, v in config.as_dict().items() if k not in ("segment_size", "reduction")}
    old = hashlib.sha256(
        json.dumps(
            {"config": fields, "data": "d", "sampler": SAMPLER_REVISION}, sort_keys=True
        ).encode()
    ).hexdigest()
    assert config.fingerprint("d") == old
    # A warm start changes the chains' start, so a checkpoint of another one is not resumed.
    assert config.replace(warm_start_steps=5).fingerprint("d") != old
    assert config.replace(reduction="ordered").fingerprint("d") != old
    with pytest.raises(Exception, match="reduction"):
        TrainConfig(reduction="fuzzy").validate()  # type: ignore[arg-type]


def _part(iteration: int, fingerprint: str = "f") -> ckpt.Checkpoint:
    return ckpt.Checkpoint(
        iteration=iteration,
        fingerprint=fingerprint,
        state=tuple(np.full((2, 3), iteration, np.float32) for _ in range(4)),
        kernel_results=(np.arange(4).reshape(4, 1),),
        traces={"step_size": np.ones(iteration, np.float32)},
    )


def test_checkpoint_parts_keep_the_last_two_and_refuse_other_layouts(tmp_path):
    for it in (10, 20, 30):
        ckpt.save_shard(tmp_path, _part(it), process=1, count=2)
    ckpt.save_shard(tmp_path, _part(20), process=0, count=2)
    assert ckpt.shard_iterations(tmp_path, process=1, count=2) == [20, 30]
    assert ckpt.shard_iterations(tmp_path, process=0, count=2) == [20]
    part = ckpt.load_shard(tmp_path, fingerprint="f", iteration=20, process=1, count=2)
    assert part.iteration == 20 and part.state[0][0, 0] == 20
    with pytest.raises(ckpt.CheckpointError, match="different configuration"):
        ckpt.load_shard(tmp_path, fingerprint="g", iteration=20, process=1, count=2)
    with pytest.raises(ckpt.CheckpointError, match="missing"):
        ckpt.load_shard(tmp_path, fingerprint="f", iteration=10, process=1, count=2)
    with pytest.raises(ckpt.CheckpointError, match="written by 2 processes"):
        ckpt.shard_iterations(tmp_path, process=0, count=4)
    with pytest.raises(ckpt.CheckpointError, match="multi-process run"):
        ckpt.load(tmp_path, fingerprint="f")
    ckpt.save(tmp_path / "single", _part(10))
    with pytest.raises(ckpt.CheckpointError, match="single process"):
        ckpt.shard_iterations(tmp_path / "single", process=0, count=2)
    assert not list(tmp_path.glob(".*.tmp"))


def test_watchdog_exits_a_stuck_process_with_code_3():
    code = (
        "import time; from training.run.watchdog import Watchdog\n"
        "with Watchdog(0.2, what='segment 0..20'):\n    time.sleep(30)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=20
    )
    assert proc.returncode == 3
    assert "segment 0..20 did not finish within 0.2 s" in proc.stderr
    ok = "from training.run.watchdog import Watchdog\nwith Watchdog(5, what='x'):\n    pass\n"
    assert subprocess.run([sys.executable, "-c", ok], cwd=ROOT, timeout=20).returncode == 0


def test_auto_outside_a_cluster_says_what_to_give():
    code = (
        "import os\n"
        "for k in list(os.environ):\n"
        "    if k.startswith(('SLURM_', 'OMPI_', 'JAX_COORD', 'TPU_')): del os.environ[k]\n"
        "from training.parallel.distributed import Cluster, DistributedError, initialize\n"
        "try:\n    initialize(Cluster(mode='auto', init_timeout_s=5))\n"
        "except DistributedError as e:\n    print('refused:', e)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=env,
    )  # fmt: skip
    assert "refused: could not join" in proc.stdout, proc.stderr[-2000:]
    assert "--coordinator-address" in proc.stdout


def test_cluster_off_is_a_single_process():
    assert not Cluster().enabled
    assert jax.process_count() == 1
