"""Training runs with warmup adaptation: what a run reports, exact resume with the
adaptation state in the checkpoint, and the flags (the reference sampler's adaptation is
checked in test_segments.py)."""

from __future__ import annotations

import numpy as np
import pytest

from training.cli.main import build_parser
from training.cli.train import config_from_args
from training.config import TrainConfig
from training.data import SyntheticSpec, generate
from training.run import checkpoint as ckpt
from training.run.loop import train

# 21 users on 2 devices: one padded user row. 40 burn-in iterations, 32 adapting: Stan's
# schedule scaled down to a fast buffer of 4, one slow window 4..28, a fast buffer of 3.
DATA = generate(SyntheticSpec(num_users=21, num_movies=15, latent_dim=2, seed=3))
CONFIG = TrainConfig(
    data="synthetic:users=21,movies=15,dim=2,seed=3",
    num_chains=3,
    num_leapfrog_steps=4,
    step_size=0.05,
    num_burnin_steps=40,
    num_results=10,
    latent_dim=2,
    devices=2,
    segment_size=10,
    trajectory="chees",
    max_leapfrog_steps=50,
)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return train(CONFIG, DATA, store_dir=tmp_path_factory.mktemp("a"))


def test_a_run_reports_what_the_warmup_adapted(uninterrupted):
    adapted = uninterrupted.adaptation
    inverse_mass = adapted["inverse_mass_matrix"]
    assert inverse_mass["user_embeddings"].shape == (21, 2)  # padding removed
    assert inverse_mass["user_bias"].shape == (21,)
    assert inverse_mass["movie_embeddings"].shape == (15, 2)
    assert inverse_mass["movie_bias"].shape == (15,)
    values = np.concatenate([x.ravel() for x in inverse_mass.values()])
    assert np.all(np.isfinite(values)) and np.all(values > 0)
    assert not np.allclose(values, 1.0)  # the slow window ended at iteration 28
    traces = uninterrupted.traces
    assert adapted["step_size"] == pytest.approx(float(traces["step_size"][-1]))
    # After adaptation the step size is fixed at the dual-averaging average.
    assert np.all(traces["step_size"][32:] == traces["step_size"][-1])
    assert adapted["trajectory_length"] > 0
    steps = traces["num_leapfrog_steps"]
    assert steps.shape == (50,) and steps.min() >= 1 and steps.max() <= 50
    d = uninterrupted.diagnostics["adaptation"]
    assert d["mass_matrix"] == "diagonal" and d["trajectory"] == "chees"
    summary = uninterrupted.diagnostics["mass_matrix"]  # training.run.diagnostics' summary
    assert summary["kind"] == "diagonal"
    assert summary["parts"]["user_bias"]["max"] == pytest.approx(
        float(inverse_mass["user_bias"].max())
    )
    assert summary["ratio_max_min"] == pytest.approx(float(values.max() / values.min()))
    assert d["leapfrog_steps_total"] == int(steps.sum())
    assert d["leapfrog_steps_per_draw"] == pytest.approx(steps[40:].mean())


def test_resume_mid_window_is_bit_identical(uninterrupted, tmp_path):
    # Stop in the middle of the slow window (Welford state, dual averaging and ChEES
    # state all in flight), then resume.
    assert train(CONFIG, DATA, store_dir=tmp_path, stop_after=20) is None
    (run_dir,) = (tmp_path / "checkpoints").iterdir()
    saved = ckpt.load(run_dir, fingerprint=CONFIG.fingerprint(DATA.fingerprint()))
    assert saved is not None and saved.iteration == 20
    resumed = train(CONFIG, DATA, store_dir=tmp_path, resume=True)
    for name, value in uninterrupted.samples.items():
        np.testing.assert_array_equal(resumed.samples[name], value, err_msg=name)
    for name, value in uninterrupted.traces.items():
        np.testing.assert_array_equal(resumed.traces[name], value, err_msg=name)
    for name, value in uninterrupted.adaptation["inverse_mass_matrix"].items():
        np.testing.assert_array_equal(resumed.adaptation["inverse_mass_matrix"][name], value)
    assert resumed.adaptation["step_size"] == uninterrupted.adaptation["step_size"]


def test_identity_mass_matrix_reports_none():
    config = CONFIG.replace(mass_matrix="identity", trajectory="fixed")
    result = train(config, DATA)
    assert result.adaptation["inverse_mass_matrix"] is None
    assert result.adaptation["trajectory_length"] is None
    assert result.diagnostics["mass_matrix"] == {"kind": "identity"}
    assert np.all(result.traces["num_leapfrog_steps"] == config.num_leapfrog_steps)


def test_flags_reach_the_config():
    args = build_parser().parse_args(
        [
            "train", "--mass-matrix", "identity", "--trajectory", "chees",
            "--step-size-jitter", "0", "--target-accept-prob", "0.8",
            "--adapt-init-buffer", "10", "--adapt-window", "5", "--adapt-term-buffer", "7",
            "--max-leapfrog-steps", "64",
        ]
    )  # fmt: skip
    config = config_from_args(args)
    assert (config.mass_matrix, config.trajectory) == ("identity", "chees")
    assert (config.step_size_jitter, config.target_accept_prob) == (0.0, 0.8)
    assert (config.adapt_init_buffer, config.adapt_window, config.adapt_term_buffer) == (10, 5, 7)
    assert config.max_leapfrog_steps == 64
    defaults = config_from_args(build_parser().parse_args(["train"]))
    assert (defaults.mass_matrix, defaults.trajectory) == ("diagonal", "fixed")
