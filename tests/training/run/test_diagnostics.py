"""Diagnostics on draws whose answer is known (no sampling): R-hat, ESS, MCSE, divergences."""

from __future__ import annotations

import numpy as np
import pytest

from training.config import preset
from training.data import SyntheticSpec, generate
from training.run.diagnostics import (
    chain_stats,
    diagnose,
    divergent,
    mass_matrix_summary,
    moves_per_chain,
)

RNG = np.random.default_rng(7)
IID = RNG.standard_normal((1000, 4))  # [draws, chains]


def test_iid_normal_draws_have_rhat_one_and_ess_near_the_draw_count():
    s = chain_stats(IID)
    assert abs(float(s["rhat"]) - 1.0) < 0.01
    n = IID.size  # ESS is the total over chains
    assert 0.85 * n < float(s["ess_bulk"]) < 1.15 * n
    assert 0.85 * n < float(s["ess_tail"]) < 1.15 * n


def test_ess_is_a_total_over_chains():
    one = float(chain_stats(IID[:, :1])["ess_bulk"])
    four = float(chain_stats(IID)["ess_bulk"])
    assert 3.4 < four / one < 4.6


def test_autocorrelated_draws_have_the_ar1_effective_sample_size():
    rho, draws, chains = 0.9, 4000, 4
    x = np.zeros((draws, chains))
    noise = np.random.default_rng(1).standard_normal((draws, chains))
    for t in range(1, draws):
        x[t] = rho * x[t - 1] + noise[t]
    expected = draws * chains * (1 - rho) / (1 + rho)  # the AR(1) integrated autocorrelation
    assert 0.7 * expected < float(chain_stats(x)["ess_bulk"]) < 1.3 * expected


def test_chains_with_shifted_means_have_rhat_far_above_one():
    shifted = IID.copy()
    shifted[:, 1] += 3.0
    assert float(chain_stats(shifted)["rhat"]) > 1.3
    # Fully separated chains: rank normalization caps R-hat (about 1.73 for 2 chains).
    two = np.stack([IID[:, 0], IID[:, 1] + 10.0], axis=1)
    assert float(chain_stats(two)["rhat"]) > 1.6


def test_rhat_splits_chains_so_a_shared_drift_is_caught():
    # Both chains drift the same way: their means agree, so unsplit R-hat sees nothing;
    # split R-hat compares first and second halves and does.
    drift = np.linspace(-2.0, 2.0, 1000)[:, None] + 0.3 * IID[:, :2]
    between = 1000 * np.var(drift.mean(axis=0), ddof=1)
    within = drift.var(axis=0, ddof=1).mean()
    unsplit = np.sqrt((between / within + 999) / 1000)
    assert unsplit < 1.01
    assert float(chain_stats(drift)["rhat"]) > 1.5


def test_rhat_and_ess_work_elementwise_over_trailing_axes():
    x = RNG.standard_normal((200, 2, 5))
    x[:, 1, 3] += 4.0  # only quantity 3 disagrees between chains
    rhat = chain_stats(x)["rhat"]
    assert rhat.shape == (5,)
    assert rhat[3] > 1.5 and np.all(np.delete(rhat, 3) < 1.05)


def test_constant_draws_have_undefined_rhat():
    assert np.isnan(chain_stats(np.zeros((20, 2)))["rhat"])


def test_divergences_follow_stans_energy_threshold():
    lar = np.array([0.0, -10.0, -999.0, -1000.5, np.nan, -np.inf, np.inf])
    assert divergent(lar).tolist() == [False, False, False, True, True, True, True]


def test_moves_count_state_changes_per_chain():
    tlp = np.array([[1.0, 5.0], [2.0, 5.0], [2.0, 5.0], [3.0, 5.0], [4.0, 5.0]])
    moved, transitions = moves_per_chain(tlp, start=2)  # transitions 1->2, 2->3, 3->4
    assert transitions == 3 and moved.tolist() == [2, 0]
    moved, transitions = moves_per_chain(tlp, start=0)
    assert transitions == 4 and moved.tolist() == [3, 0]


def test_mass_matrix_summary():
    assert mass_matrix_summary(None) == {"kind": "identity"}
    summary = mass_matrix_summary(
        {"movie_bias": np.array([0.5, 1.0, 4.0]), "user_bias": np.array([[2.0, np.nan]])}
    )
    assert summary["kind"] == "diagonal"
    assert summary["parts"]["movie_bias"] == {"min": 0.5, "median": 1.0, "max": 4.0}
    assert summary["parts"]["user_bias"] == {"min": 2.0, "median": 2.0, "max": 2.0}
    assert summary["ratio_max_min"] == 8.0


def _samples(rng, draws, chains, users, movies, dim):
    def normal(*shape):
        return rng.standard_normal((draws, chains, *shape)).astype(np.float32)

    return {
        "user_embeddings": normal(users, dim),
        "user_bias": normal(users),
        "movie_embeddings": normal(movies, dim),
        "movie_bias": normal(movies),
    }


@pytest.fixture(scope="module")
def data():
    return generate(SyntheticSpec(num_users=12, num_movies=9, latent_dim=2, seed=0))


def _diagnose(samples, traces, data, burn):
    config = preset("smoke").replace(num_burnin_steps=burn, num_results=len(samples["user_bias"]))
    return diagnose(
        samples=samples,
        traces=traces,
        data=data,
        config=config,
        run_seconds=2.0,
        run_iterations=len(traces["step_size"]),
        compile_seconds=0.5,
        wall_seconds=3.0,
    )


def test_diagnose_on_iid_draws(data):
    rng = np.random.default_rng(3)
    draws, chains, burn = 400, 4, 10
    samples = _samples(rng, draws, chains, data.num_users, data.num_movies, 2)
    total = burn + draws
    lar = np.log(rng.uniform(0.5, 1.0, (total, chains)))
    lar[burn + 5, 2] = np.nan  # one divergent proposal during sampling
    lar[3, 0] = -5000.0  # one during burn-in
    traces = {
        "log_accept_ratio": lar,
        "target_log_prob": rng.standard_normal((total, chains)),
        "log_likelihood": rng.standard_normal((total, chains)),
        "step_size": np.full(total, 0.03),
    }
    d = _diagnose(samples, traces, data, burn)
    assert "errors" not in d, d.get("errors")
    assert d["divergences"]["sampling"] == 1 and d["divergences"]["burnin"] == 1
    assert d["divergences"]["sampling_per_chain"] == [0, 0, 1, 0]
    assert len(d["acceptance_per_chain"]) == 4
    assert d["moves_per_chain"] == [draws] * chains and d["sampling_transitions"] == draws
    assert d["non_finite_draws"] == 0 and d["final_step_size"] == pytest.approx(0.03)
    assert d["mass_matrix"] == {"kind": "identity"}
    ll = d["log_likelihood"]
    assert abs(ll["rhat"] - 1) < 0.02 and 0.8 * 1600 < ll["ess_bulk"] < 1.2 * 1600
    pl = d["pair_logits"]
    assert pl["num_pairs"] == 50 and pl["rhat_max"] < 1.05
    assert 1000 < pl["ess_bulk_median"] < 2200 and pl["ess_tail_min"] > 500
    # MCSE of a mean of ~iid draws: its standard deviation / sqrt(draws x chains).
    per = pl["per_pair"]
    assert len(per["probability_mcse"]) == 50
    logits = (
        (samples["user_embeddings"][:, :, per["user_index"]]
         * samples["movie_embeddings"][:, :, per["movie_index"]]).sum(-1)
        + samples["user_bias"][:, :, per["user_index"]]
        + samples["movie_bias"][:, :, per["movie_index"]]
    )  # fmt: skip
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    np.testing.assert_allclose(per["probability_mean"], p.mean(axis=(0, 1)), rtol=1e-6)
    naive = p.std(axis=(0, 1), ddof=1) / np.sqrt(draws * chains)
    ratio = np.array(per["probability_mcse"]) / naive
    assert np.all((ratio > 0.75) & (ratio < 1.3)), ratio
    assert pl["probability_mcse_max"] == pytest.approx(max(per["probability_mcse"]))


def test_diagnose_on_a_stuck_run(data):
    draws, chains, burn = 20, 2, 5
    one = _samples(np.random.default_rng(0), 1, chains, data.num_users, data.num_movies, 2)
    samples = {k: np.repeat(v, draws, axis=0) for k, v in one.items()}  # never moved
    total = burn + draws
    traces = {
        "log_accept_ratio": np.full((total, chains), np.nan),
        "target_log_prob": np.full((total, chains), -100.0),
        "log_likelihood": np.full((total, chains), -90.0),
        "step_size": np.full(total, 1e6),
    }
    d = _diagnose(samples, traces, data, burn)
    assert d["mean_acceptance"] == 0.0 and d["acceptance_per_chain"] == [0.0, 0.0]
    assert d["moves_per_chain"] == [0, 0]
    assert d["divergences"]["sampling"] == draws * chains
    assert d["log_likelihood"]["rhat"] is None  # undefined for constant draws
    assert d["pair_logits"]["rhat_max"] is None


def test_diagnose_reports_a_failing_section_and_keeps_the_rest(data):
    samples = _samples(np.random.default_rng(0), 8, 2, data.num_users, data.num_movies, 2)
    traces = {
        "log_accept_ratio": np.zeros((10, 2)),
        "target_log_prob": np.arange(20.0).reshape(10, 2),
        "step_size": np.full(10, 0.1),
    }  # no log_likelihood trace
    d = _diagnose(samples, traces, data, 2)
    assert any(e.startswith("log_likelihood: KeyError") for e in d["errors"])
    assert d["mean_acceptance"] == 1.0 and d["pair_logits"]["num_pairs"] == 50
