"""Sampling runs: same seed -> same draws; a resumed run equals an uninterrupted one."""

from __future__ import annotations

import numpy as np
import pytest

from training.config import TrainConfig
from training.data import SyntheticSpec, generate
from training.run import checkpoint as ckpt
from training.run.loop import train

# 21 users on 2 devices: one padded user row.
DATA = generate(SyntheticSpec(num_users=21, num_movies=15, latent_dim=2, seed=3))
CONFIG = TrainConfig(
    data="synthetic:users=21,movies=15,dim=2,seed=3",
    num_chains=2,
    num_leapfrog_steps=3,
    step_size=0.05,
    num_burnin_steps=10,
    num_results=10,
    latent_dim=2,
    devices=2,
    segment_size=5,
)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return train(CONFIG, DATA, store_dir=tmp_path_factory.mktemp("a"))


def test_outputs_have_reference_shapes_without_padding(uninterrupted):
    r = uninterrupted
    assert r.samples["user_embeddings"].shape == (10, 2, 21, 2)
    assert r.samples["user_bias"].shape == (10, 2, 21)
    assert r.samples["movie_embeddings"].shape == (10, 2, 15, 2)
    assert r.samples["movie_bias"].shape == (10, 2, 15)
    assert r.traces["target_log_prob"].shape == (20, 2)
    assert r.traces["log_accept_ratio"].shape == (20, 2)
    assert r.traces["step_size"].shape == (20,)
    assert all(np.isfinite(x).all() for x in r.samples.values())
    d = r.diagnostics
    assert "error" not in d
    assert 0.0 <= d["mean_acceptance"] <= 1.0
    assert d["leapfrog_per_s"] > 0 and d["pair_logits"]["num_pairs"] == 50
    assert d["log_likelihood"]["rhat"] is not None


def test_same_seed_gives_identical_samples(uninterrupted):
    again = train(CONFIG.replace(segment_size=10), DATA)  # segmenting must not matter either
    for name, value in uninterrupted.samples.items():
        np.testing.assert_array_equal(again.samples[name], value, err_msg=name)
    np.testing.assert_array_equal(again.traces["step_size"], uninterrupted.traces["step_size"])
    other = train(CONFIG.replace(seed=1), DATA)
    assert not np.allclose(other.samples["movie_bias"], uninterrupted.samples["movie_bias"])


def test_resume_from_mid_run_checkpoint_equals_uninterrupted(uninterrupted, tmp_path):
    # Stop in the sampling phase, after one of two sampling segments.
    assert train(CONFIG, DATA, store_dir=tmp_path, stop_after=15) is None
    (run_dir,) = (tmp_path / "checkpoints").iterdir()
    saved = ckpt.load(run_dir, fingerprint=CONFIG.fingerprint(DATA.fingerprint()))
    assert saved is not None and saved.iteration == 15
    resumed = train(CONFIG, DATA, store_dir=tmp_path, resume=True)
    for name, value in uninterrupted.samples.items():
        np.testing.assert_array_equal(resumed.samples[name], value, err_msg=name)
    for name, value in uninterrupted.traces.items():
        np.testing.assert_array_equal(resumed.traces[name], value, err_msg=name)


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path):
    train(CONFIG, DATA, store_dir=tmp_path, run_id="fixed", stop_after=5)
    with pytest.raises(ckpt.CheckpointError, match="different configuration"):
        train(CONFIG.replace(seed=9), DATA, store_dir=tmp_path, run_id="fixed", resume=True)


def test_reference_likelihood_stays_selectable():
    """`--likelihood reference` (TFP's PreconditionedHamiltonianMonteCarlo) runs the same
    way, with the adapted diagonal mass matrix as its Sharded Normal momenta and ChEES."""
    # 30 burn-in iterations, 24 adapting: one slow window (3..21).
    config = CONFIG.replace(
        likelihood="reference", num_burnin_steps=30, num_results=5, trajectory="chees"
    )
    result = train(config, DATA)
    assert result.samples["user_embeddings"].shape == (5, 2, 21, 2)
    assert all(np.isfinite(x).all() for x in result.samples.values())
    assert 0.0 < result.diagnostics["mean_acceptance"] <= 1.0
    inverse_mass = result.adaptation["inverse_mass_matrix"]
    assert inverse_mass["user_embeddings"].shape == (21, 2)  # padded row removed
    values = np.concatenate([x.ravel() for x in inverse_mass.values()])
    assert np.all(values > 0) and not np.allclose(values, 1.0)
    assert result.adaptation["trajectory_length"] > 0
    assert result.traces["num_leapfrog_steps"].min() >= 1
