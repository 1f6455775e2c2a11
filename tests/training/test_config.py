"""Config validation, presets and checkpoint refusal (no sampling)."""

from __future__ import annotations

import numpy as np
import pytest

from training.config import PRESETS, ConfigError, TrainConfig, preset
from training.run import checkpoint as ckpt


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"latent_dim": 0}, "latent_dim"),
        ({"latent_dim": -3}, "latent_dim"),
        ({"num_chains": 0}, "num_chains"),
        ({"num_burnin_steps": -1}, "num_burnin_steps"),
        ({"num_results": 0}, "num_results"),
        ({"step_size": 0.0}, "step_size"),
        ({"step_size": float("inf")}, "step_size must be a positive finite number"),
        ({"step_size": float("nan")}, "step_size"),
        ({"prior_scale": float("inf")}, "prior_scale"),
        ({"adaptation_share": float("nan")}, "adaptation_share"),
        ({"seed": -1}, "seed must be in"),
        ({"seed": 2**32}, "seed must be in"),
        ({"num_results": 2**31 - 1, "num_burnin_steps": 1}, "int32"),
        ({"prior_scale": -1.0}, "prior_scale"),
        ({"adaptation_share": 1.5}, "adaptation_share"),
        ({"matmul_precision": "fp8"}, "matmul_precision"),
        ({"likelihood": "magic"}, "likelihood"),
        ({"data": " "}, "data"),
        ({"mass_matrix": "dense"}, "mass_matrix"),
        ({"trajectory": "nuts"}, "trajectory"),
        ({"step_size_jitter": 1.0}, "step_size_jitter"),
        ({"step_size_jitter": -0.1}, "step_size_jitter"),
        ({"target_accept_prob": 1.0}, "target_accept_prob"),
        ({"adapt_window": 0}, "adapt_window"),
        ({"adapt_init_buffer": -1}, "adapt_init_buffer"),
        ({"max_leapfrog_steps": 0}, "max_leapfrog_steps"),
        ({"warm_start_steps": -1}, "warm_start_steps"),
        ({"warm_start_learning_rate": float("inf")}, "warm_start_learning_rate"),
        ({"warm_start_learning_rate": 0.0}, "--warm-start-learning-rate"),
        ({"trajectory": "chees", "num_chains": 1}, "at least 2"),
        ({"trajectory": "chees", "max_leapfrog_steps": 10}, "max_leapfrog_steps"),
    ],
)
def test_bad_configs_are_refused_with_the_option_named(change, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**change).validate()


def test_more_devices_than_exist_is_refused():
    with pytest.raises(ConfigError, match="only 2 exist"):
        TrainConfig(devices=4).validate(available_devices=2)


def test_presets_are_valid_and_the_reference_matches_the_notebook():
    for config in PRESETS.values():
        config.validate()
    ref = preset("reference")
    # The notebook's schedule with 4 chains, not 2: R-hat from 2 chains certifies little.
    assert (ref.num_chains, ref.latent_dim, ref.step_size, ref.num_leapfrog_steps) == (
        4,
        20,
        1e-2,
        100,
    )
    assert (ref.num_burnin_steps, ref.num_results, ref.num_adaptation_steps) == (1000, 500, 800)
    assert ref.matmul_precision == "tensorfloat32"
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("huge")


def test_replace_ignores_unset_flags_and_fingerprint_ignores_segment_size():
    base = preset("smoke")
    assert base.replace(num_chains=None, seed=3).seed == 3
    assert base.replace(num_chains=None).num_chains == base.num_chains
    assert base.fingerprint("d") == base.replace(segment_size=7).fingerprint("d")
    assert base.fingerprint("d") != base.replace(seed=1).fingerprint("d")
    assert base.fingerprint("d") != base.fingerprint("other data")


def _checkpoint(fingerprint: str) -> ckpt.Checkpoint:
    return ckpt.Checkpoint(
        iteration=5,
        fingerprint=fingerprint,
        state=tuple(np.full((2, 3), i, np.float32) for i in range(4)),
        kernel_results=(np.arange(3), np.ones((1, 2), np.uint32)),
        traces={"step_size": np.ones(5, np.float32)},
    )


def test_checkpoint_round_trip_and_refusal_of_another_run(tmp_path):
    ckpt.save(tmp_path, _checkpoint("abc"))
    loaded = ckpt.load(tmp_path, fingerprint="abc")
    assert loaded is not None and loaded.iteration == 5
    np.testing.assert_array_equal(loaded.kernel_results[1], np.ones((1, 2), np.uint32))
    assert ckpt.load(tmp_path / "nothing", fingerprint="abc") is None
    with pytest.raises(ckpt.CheckpointError, match="different configuration"):
        ckpt.load(tmp_path, fingerprint="xyz")
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


def test_samples_segments_must_cover_the_kept_draws(tmp_path):
    seg = {"user_bias": np.zeros((4, 2, 3), np.float32)}
    ckpt.save_samples(tmp_path, 0, seg)
    ckpt.save_samples(tmp_path, 4, seg)
    assert sum(s["user_bias"].shape[0] for s in ckpt.load_samples(tmp_path, num_kept=6)) == 6
    with pytest.raises(ckpt.CheckpointError, match="holds 8 of 10"):
        ckpt.load_samples(tmp_path, num_kept=10)


def test_fake_devices_can_only_be_requested_before_jax_starts(monkeypatch):
    import jax  # noqa: F401  (makes "already imported" certain)

    from training.parallel.mesh import request_cpu_devices

    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
    assert request_cpu_devices(4) is True
    with pytest.warns(RuntimeWarning, match="already imported"):
        assert request_cpu_devices(16) is False


def test_progress_lines_and_jsonl(tmp_path):
    import io
    import json

    from training.run.progress import ConsolePrinter, JsonlWriter, fan_out

    payload = {
        "phase": "burnin", "iteration": 10, "total": 40, "leapfrog_per_s": 12.5,
        "acceptance": 0.71, "step_size": 0.02, "eta_s": 75.0,
    }  # fmt: skip
    out = io.StringIO()
    sink = fan_out([ConsolePrinter(out, live=False), JsonlWriter(tmp_path / "p.jsonl"), None])
    sink(payload)
    sink({**payload, "iteration": 40})
    assert "10/40" in out.getvalue() and "accept 0.71" in out.getvalue()
    assert "eta 1:15" in out.getvalue()
    lines = (tmp_path / "p.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in lines] == [10, 40]
    live = io.StringIO()
    ConsolePrinter(live, live=True)(payload)
    assert live.getvalue().startswith("\r[######")


def test_divergent_proposals_count_as_rejections_in_the_acceptance():
    import numpy as np

    from training.data import SyntheticSpec, generate
    from training.run.diagnostics import diagnose

    config = preset("smoke").replace(num_burnin_steps=2, num_results=2)
    lar = np.array([[np.nan, 0.0], [0.0, np.log(0.5)], [0.0, 0.0], [np.log(0.5), 0.0]])
    traces = {
        "log_accept_ratio": lar,
        "step_size": np.full(4, 0.1),
        "target_log_prob": np.zeros((4, 2)),
        "log_likelihood": np.zeros((4, 2)),
    }
    samples = {
        "user_embeddings": np.zeros((2, 2, 3, 3), np.float32),
        "user_bias": np.zeros((2, 2, 3), np.float32),
        "movie_embeddings": np.zeros((2, 2, 4, 3), np.float32),
        "movie_bias": np.zeros((2, 2, 4), np.float32),
    }
    data = generate(SyntheticSpec(num_users=3, num_movies=4, latent_dim=3, seed=0))
    d = diagnose(
        samples=samples,
        traces=traces,
        data=data,
        config=config,
        run_seconds=1.0,
        run_iterations=4,
        compile_seconds=0.0,
        wall_seconds=1.0,
    )
    assert d["mean_acceptance_burnin"] == 0.625  # (0 + 1 + 1 + 0.5) / 4
    assert d["mean_acceptance"] == 0.875
