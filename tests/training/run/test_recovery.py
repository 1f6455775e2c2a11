"""HMC recovers a synthetic truth, and dual averaging lands near its acceptance target."""

from __future__ import annotations

import numpy as np
import pytest

from training.config import TrainConfig
from training.data import SyntheticSpec, generate
from training.run.diagnostics import pair_logits, probe_pairs
from training.run.loop import train

CORRELATION_THRESHOLD = 0.9  # posterior-mean vs true watch probabilities
TARGET_ACCEPTANCE = 0.75  # TFP DualAveragingStepSizeAdaptation's default target_accept_prob
ACCEPTANCE_TOLERANCE = 0.15


@pytest.mark.slow
def test_posterior_mean_probabilities_recover_the_truth():
    data = generate(
        SyntheticSpec(
            num_users=150,
            num_movies=120,
            latent_dim=2,
            seed=1,
            movie_bias_mean=-1.0,
            embedding_scale=1.0,
        )
    )
    config = TrainConfig(
        data="synthetic",
        num_chains=2,
        num_leapfrog_steps=10,
        step_size=0.05,
        num_burnin_steps=200,
        num_results=100,
        latent_dim=2,
        devices=4,  # 150 users on 4 devices: two padded rows
        segment_size=100,
    )
    result = train(config, data)
    s = result.samples
    logits = (
        np.einsum("scnd,scmd->scnm", s["user_embeddings"], s["movie_embeddings"])
        + s["user_bias"][..., None]
        + s["movie_bias"][:, :, None, :]
    )
    posterior_mean = (1.0 / (1.0 + np.exp(-logits))).mean(axis=(0, 1))
    truth = data.truth.probabilities()
    correlation = np.corrcoef(posterior_mean.ravel(), truth.ravel())[0, 1]
    assert correlation > CORRELATION_THRESHOLD, correlation

    d = result.diagnostics
    assert abs(d["mean_acceptance"] - TARGET_ACCEPTANCE) < ACCEPTANCE_TOLERANCE, d
    assert d["log_likelihood"]["rhat"] < 1.2, d
    # The probe logits are the diagnostics' identifiable quantities.
    pairs = probe_pairs(data.num_users, data.num_movies)
    assert pair_logits(s, pairs).shape == (100, 2, 50)
