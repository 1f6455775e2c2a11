"""Laplace fold-in against a long single-user HMC reference, on small data."""

from __future__ import annotations

import numpy as np
import pytest

from common.foldin import FoldInError, laplace_fold_in, prior_predictive
from common.picks import sigmoid

K, M, D, SCALE = 24, 90, 3, 1.0


def problem(seed: int = 0, watched_count: int = 18):
    """Posterior samples of the movie variables and a user who watched `watched_count`."""
    rng = np.random.default_rng(seed)
    center = rng.normal(0, 1, (M, D))
    v = (center + 0.3 * rng.normal(0, 1, (K, M, D))).astype(np.float32)
    c = (-2.0 + 0.5 * rng.normal(0, 1, (M,)) + 0.2 * rng.normal(0, 1, (K, M))).astype(np.float32)
    taste = rng.normal(0, 1, D)
    logits = center @ taste - 1.0
    watched = np.argsort(-logits + rng.gumbel(size=M))[:watched_count]
    return v, c, np.sort(watched)


def hmc_reference(v, c, watched, *, chains=4, warmup=400, draws=1500, seed=0):
    """A long HMC run of each sample's single-user posterior, the chains in lockstep.

    Target per sample k: log N(w; 0, SCALE^2 I) + sum_j y_j z_j - softplus(z_j),
    z = V_k U + u + v_k. Leapfrog with a unit mass matrix; returns the posterior mean of
    sigmoid(z) over movies (averaged over samples and draws) and the acceptance rate.
    """
    rng = np.random.default_rng(seed)
    v = np.repeat(v.astype(np.float64), chains, axis=0)
    c = np.repeat(c.astype(np.float64), chains, axis=0)
    y = np.zeros(M)
    y[watched] = 1.0

    def logp_and_grad(w):
        z = np.einsum("kmd,kd->km", v, w[:, :D]) + w[:, D:] + c
        logp = (y * z - np.logaddexp(0, z)).sum(1) - 0.5 * (w**2).sum(1) / SCALE**2
        r = y - sigmoid(z)
        grad = np.concatenate([np.einsum("km,kmd->kd", r, v), r.sum(1, keepdims=True)], 1)
        return logp, grad - w / SCALE**2

    w = np.zeros((v.shape[0], D + 1))
    logp, grad = logp_and_grad(w)
    step, leapfrogs = 0.12, 8
    total = np.zeros(M)
    accepted = 0.0
    for it in range(warmup + draws):
        p0 = rng.normal(size=w.shape)
        w1, p1, g1 = w.copy(), p0 + 0.5 * step * grad, grad
        for i in range(leapfrogs):
            w1 = w1 + step * p1
            lp1, g1 = logp_and_grad(w1)
            if i < leapfrogs - 1:
                p1 = p1 + step * g1
        p1 = p1 + 0.5 * step * g1
        log_accept = lp1 - 0.5 * (p1**2).sum(1) - (logp - 0.5 * (p0**2).sum(1))
        accept = np.log(rng.random(w.shape[0])) < log_accept
        w[accept], logp[accept], grad[accept] = w1[accept], lp1[accept], g1[accept]
        if it >= warmup:
            accepted += accept.mean()
            z = np.einsum("kmd,kd->km", v, w[:, :D]) + w[:, D:] + c
            total += sigmoid(z).mean(0)
    return total / draws, accepted / draws


def foldin_mean(v, c, watched, *, draws=300, seed=0):
    fold = laplace_fold_in(
        v, c, watched, prior_scale=SCALE, rng=np.random.default_rng(seed), draws=draws
    )
    u = fold.user_embeddings.reshape(K, draws, D)
    b = fold.user_bias.reshape(K, draws)
    z = np.einsum("kmd,ktd->ktm", v, u) + b[..., None] + c[:, None, :]
    return sigmoid(z.astype(np.float64)).mean((0, 1)), fold


@pytest.mark.parametrize("watched_count", [18, 3])
def test_laplace_matches_a_long_hmc_run(watched_count):
    v, c, watched = problem(watched_count=watched_count)
    reference, acceptance = hmc_reference(v, c, watched)
    assert acceptance > 0.6
    mean, fold = foldin_mean(v, c, watched)
    assert fold.max_gradient < 1e-6 and fold.newton_steps < 30
    assert np.abs(mean - reference).mean() <= 0.02
    top_ref = set(np.argsort(-reference)[:20].tolist())
    top = set(np.argsort(-mean)[:20].tolist())
    assert len(top & top_ref) >= 18
    # The fold-in learns from the watches: watched movies score above the rest on average.
    unwatched = np.setdiff1d(np.arange(M), watched)
    assert mean[watched].mean() > mean[unwatched].mean()


def test_draws_are_sample_major_and_reproducible():
    v, c, watched = problem()
    a = laplace_fold_in(v, c, watched, prior_scale=SCALE, rng=np.random.default_rng(5), draws=2)
    b = laplace_fold_in(v, c, watched, prior_scale=SCALE, rng=np.random.default_rng(5), draws=2)
    assert a.user_embeddings.shape == (2 * K, D) and a.user_bias.shape == (2 * K,)
    assert np.array_equal(a.user_embeddings, b.user_embeddings)
    chunked = laplace_fold_in(
        v, c, watched, prior_scale=SCALE, rng=np.random.default_rng(5), chunk_samples=5
    )
    assert np.allclose(chunked.mode, a.mode, atol=1e-8)


def test_bad_input_is_refused_with_the_reason():
    v, c, _ = problem()
    rng = np.random.default_rng(0)
    with pytest.raises(FoldInError, match="indices"):
        laplace_fold_in(v, c, np.array([M]), prior_scale=SCALE, rng=rng)
    with pytest.raises(FoldInError, match="prior_scale"):
        laplace_fold_in(v, c, np.array([1]), prior_scale=0.0, rng=rng)
    with pytest.raises(FoldInError, match="movie_bias"):
        laplace_fold_in(v, c[:, :-1], np.array([1]), prior_scale=SCALE, rng=rng)


def test_prior_predictive_has_the_prior_scale():
    u, b = prior_predictive(4000, 3, prior_scale=2.0, rng=np.random.default_rng(0))
    assert u.shape == (4000, 3) and b.shape == (4000,)
    assert np.std(u) == pytest.approx(2.0, rel=0.05)
