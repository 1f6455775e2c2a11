"""Sizes known before training: the formula, the refusal (and what would fit), XLA."""

from __future__ import annotations

import warnings

import pytest

from training.config import PRESETS, TrainConfig
from training.run.memory import (
    MemoryPlanError,
    MemoryWarning,
    check_fits,
    compare_with_xla,
    device_bytes,
    host_available_bytes,
    parse_bytes,
    plan_memory,
)

GIB = 2**30
ML25M = {"users": 162_541, "movies": 59_047, "watches": 25_000_095}


def _plan(config, *, platform="cpu", device=None, host=None, processes=1, local=None, **shape):
    shape = shape or ML25M
    return plan_memory(
        config, **shape, processes=processes, local_devices=local or config.devices,
        platform=platform, available_device=device, available_host=host,
    )  # fmt: skip


def test_dense_term_shrinks_with_devices_and_movie_terms_do_not():
    one = device_bytes(n=6040, m=3706, d=20, c=2, p=1, t=20, likelihood="reference", ordered=False)
    eight = device_bytes(
        n=6040, m=3706, d=20, c=2, p=8, t=20, likelihood="reference", ordered=False
    )
    assert one["dense_blocks"] == 6040 * 3706 * 59  # the README's 59 N M / P for C = 2
    assert eight["dense_blocks"] == 755 * 3706 * 59
    fast = device_bytes(n=6040, m=3706, d=20, c=2, p=1, t=20, likelihood="fast", ordered=False)
    assert fast["dense_blocks"] < one["dense_blocks"] / 10  # blocks of 256 users
    ordered = device_bytes(n=6040, m=3706, d=20, c=2, p=8, t=20, likelihood="fast", ordered=True)
    assert ordered["ordered_gather"] == 4 * 8 * 2 * 3706 * 21


def test_accelerator_refusal_says_how_many_devices_would_do():
    config = PRESETS["reference"].replace(devices=8, likelihood="reference")  # 4 chains
    plan = _plan(config, platform="gpu", device=16 * GIB, host=512 * GIB, local=8)
    with pytest.raises(MemoryPlanError) as caught:
        check_fits(plan, config)
    message = str(caught.value)
    assert "GiB per device but has 16.00 GiB" in message
    assert "watch matrix 162,541 x 59,047" in message
    # The smallest power-of-two multiple of 8 devices whose per-device need fits.
    devices = int(message.split("it would fit on ")[1].split(" devices")[0])
    fits = device_bytes(n=ML25M["users"], m=ML25M["movies"], d=20, c=4, p=devices, t=50,
                        likelihood="reference", ordered=False)  # fmt: skip
    half = device_bytes(n=ML25M["users"], m=ML25M["movies"], d=20, c=4, p=devices // 2, t=50,
                        likelihood="reference", ordered=False)  # fmt: skip
    assert fits["total"] <= 16 * GIB < half["total"]
    assert f"({devices // 8} hosts of 8)" in message


def test_cpu_refusal_counts_host_memory_and_suggests_hosts():
    config = TrainConfig(data="x", devices=8, likelihood="reference", num_results=100)
    plan = _plan(config, host=24 * GIB)
    assert plan.host_total == 8 * plan.per_device["total"] + plan.host  # shared by 8 devices
    with pytest.raises(MemoryPlanError, match=r"on this host but has 24\.00 GiB available.*"
                       r"it would fit on \d+ hosts with this much memory each"):  # fmt: skip
        check_fits(plan, config)
    small = _plan(config, host=24 * GIB, users=6040, movies=3706, watches=1_000_209)
    check_fits(small, config)  # ml-1m fits


def test_a_run_that_cannot_fit_anywhere_says_so():
    config = TrainConfig(data="x", devices=1, num_results=100_000)  # a huge posterior on host
    plan = _plan(config, host=GIB)
    with pytest.raises(MemoryPlanError, match="no number of devices or hosts is enough"):
        check_fits(plan, config)


def test_budget_setting(monkeypatch):
    monkeypatch.setenv("SHARDLENS_MEMORY_BUDGET", "24G")
    assert host_available_bytes() == 24 * GIB
    assert parse_bytes("512MiB") == 512 * 2**20 and parse_bytes("1000") == 1000
    monkeypatch.delenv("SHARDLENS_MEMORY_BUDGET")
    assert (host_available_bytes() or 1) > 0


def test_xla_comparison_warns_past_20_percent():
    config = TrainConfig(data="x", latent_dim=20, num_chains=2, segment_size=20)
    plan = _plan(config, users=4096, movies=3706, watches=10)
    formula = device_bytes(n=4096, m=3706, d=20, c=2, p=1, t=20, likelihood="fast", ordered=False)
    close = {"arguments": 0, "outputs": 0, "temporaries": int(formula["total"] * 1.1), "aliased": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("error", MemoryWarning)
        out = compare_with_xla(plan, config, close, segment_length=20)
    assert out["formula_over_xla"] == pytest.approx(1 / 1.1, rel=1e-3)
    far = {**close, "temporaries": formula["total"] * 2}
    with pytest.warns(MemoryWarning, match=r"the formula says .* MiB but XLA's compiled program"):
        compare_with_xla(plan, config, far, segment_length=20)


@pytest.mark.slow
def test_a_run_records_its_sizes_and_xla_agrees(tmp_path):
    """The plan reaches progress before compiling; XLA's figures join it afterwards, within
    20% at a shape where the dense blocks dominate."""
    from training.data import SyntheticSpec, generate
    from training.run.loop import train

    data = generate(SyntheticSpec(num_users=1024, num_movies=1000, latent_dim=2, seed=0))
    config = TrainConfig(
        data="synthetic", num_chains=2, latent_dim=8, num_leapfrog_steps=2, step_size=0.01,
        num_burnin_steps=0, num_results=2, segment_size=2, devices=1,
    )  # fmt: skip
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", MemoryWarning)
        result = train(config, data, progress=seen.append)
    first = seen[0]
    assert first["phase"] == "compile" and first["sizes"]["users"] == 1024
    assert "watch matrix 1,024 x 1,000" in first["sizes"]["summary"]
    memory = result.diagnostics["memory"]
    assert memory["xla_bytes_per_device"] > 0
    assert 0.8 <= memory["formula_over_xla"] <= 1.2


def test_train_refuses_a_run_that_does_not_fit_with_exit_2(tmp_path, monkeypatch, capsys):
    from training.cli.main import main as training_main

    monkeypatch.setenv("SHARDLENS_MEMORY_BUDGET", "64K")
    argv = ["train", "--preset", "smoke", "--store", str(tmp_path / "store")]
    assert training_main(argv) == 2
    err = capsys.readouterr().err
    assert "error: this run needs" in err and "64.00 KiB available" in err
    assert "watch matrix 40 x 30" in err and "Traceback" not in err
    assert not (tmp_path / "store" / "versions").exists()  # nothing published


def test_job_records_keep_the_sizes(tmp_path):
    from app.jobs.schemas import JobRecord
    from storage.job_store import JobStore

    store = JobStore(tmp_path / "jobs.sqlite3")
    job = store.create(config={"preset": "smoke"})
    store.mark_running(job.id)
    sizes = {"users": 40, "movies": 30, "per_device": {"total": 97600}, "summary": "..."}
    progress = {"phase": "compile", "iteration": 0, "total": 60, "sizes": sizes}
    assert store.update_progress(job.id, progress)
    assert store.get(job.id).sizes == sizes
    store.update_progress(job.id, {"phase": "burnin", "iteration": 20, "total": 60})
    assert store.get(job.id).sizes == sizes  # later progress keeps them
    assert JobRecord.of(store.get(job.id)).sizes == sizes
