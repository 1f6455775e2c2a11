"""Laplace fold-in against a long single-user HMC reference, and the fast method's modes and
curvatures against exact float64 Newton, on small data."""

from __future__ import annotations

import numpy as np
import pytest

from common.foldin import (
    FoldInError,
    fold_in_layout,
    laplace_fold_in,
    laplace_fold_in_exact,
    layout_logits,
    prior_predictive,
)
from common.picks import sigmoid

K, M, D, SCALE = 24, 90, 3, 1.0


def problem(seed: int = 0, watched_count: int = 18, chains: int = 1):
    """Posterior samples of the movie variables and a user who watched `watched_count`.

    With `chains` > 1 each chain's samples are rotated by their own random orthogonal
    matrix, as chains of the model (whose likelihood and prior are rotation-invariant) are.
    """
    rng = np.random.default_rng(seed)
    center = rng.normal(0, 1, (M, D))
    v = center + 0.3 * rng.normal(0, 1, (K, M, D))
    for chain, rows in enumerate(np.array_split(np.arange(K), chains)):
        if chain:
            rotation = np.linalg.qr(rng.normal(size=(D, D)))[0]
            v[rows] = v[rows] @ rotation
    v = v.astype(np.float32)
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


def log_posterior_gradient(v, c, watched, w, scale=SCALE):
    """float64 gradient [K, D+1] of every sample's log posterior at w [K, D+1]."""
    y = np.zeros(v.shape[1])
    y[watched] = 1.0
    v, c = v.astype(np.float64), c.astype(np.float64)
    d = v.shape[2]
    r = y - sigmoid(np.einsum("kmd,kd->km", v, w[:, :d]) + w[:, d:] + c)
    grad = np.concatenate([np.einsum("km,kmd->kd", r, v), r.sum(1, keepdims=True)], 1)
    return grad - w / scale**2


def fold(method, v, c, watched, *, draws=1, seed=0, scale=SCALE, **options):
    rng = np.random.default_rng(seed)
    if method == "exact":
        return laplace_fold_in_exact(
            v, c, watched, prior_scale=scale, rng=rng, draws=draws, **options
        )
    layout = fold_in_layout(v, c)
    return laplace_fold_in(layout, watched, prior_scale=scale, rng=rng, draws=draws, **options)


def foldin_mean(method, v, c, watched, *, draws=300, seed=0):
    fold_in = fold(method, v, c, watched, draws=draws, seed=seed)
    u = fold_in.user_embeddings.reshape(K, draws, D)
    b = fold_in.user_bias.reshape(K, draws)
    z = np.einsum("kmd,ktd->ktm", v, u) + b[..., None] + c[:, None, :]
    return sigmoid(z.astype(np.float64)).mean((0, 1)), fold_in


@pytest.mark.parametrize("watched_count", [18, 3])
def test_laplace_matches_a_long_hmc_run(watched_count):
    v, c, watched = problem(watched_count=watched_count)
    reference, acceptance = hmc_reference(v, c, watched)
    assert acceptance > 0.6
    for method in ("fast", "exact"):
        mean, fold_in = foldin_mean(method, v, c, watched)
        assert fold_in.newton_steps < 30, method
        assert np.abs(mean - reference).mean() <= 0.02, method
        top_ref = set(np.argsort(-reference)[:20].tolist())
        top = set(np.argsort(-mean)[:20].tolist())
        assert len(top & top_ref) >= 18, method
        # The fold-in learns from the watches: watched movies score above the rest.
        unwatched = np.setdiff1d(np.arange(M), watched)
        assert mean[watched].mean() > mean[unwatched].mean(), method


def test_exact_newton_reaches_the_modes():
    v, c, watched = problem()
    exact = fold("exact", v, c, watched)
    assert np.abs(log_posterior_gradient(v, c, watched, exact.mode)).max() < 1e-6
    assert exact.last_step < 1e-6


@pytest.mark.parametrize(
    ("seed", "watched_count", "chains", "scale"),
    [(0, 18, 1, SCALE), (1, 3, 3, SCALE), (2, 30, 4, 2.0), (3, 0, 2, 0.5), (4, 12, 24, SCALE)],
)
def test_fast_modes_and_curvatures_match_exact_newton(seed, watched_count, chains, scale):
    """The served method's stated error: modes within 1e-4 of exact float64 Newton (a last
    step below tol = 1e-2 leaves about tol^2, plus float32 rounding), and the Laplace
    precision, taken one step before the mode, within 2% (every eigenvalue of
    exact^-1 fast within 0.02 of 1). Rotated chains exercise the rotation-invariant start."""
    v, c, watched = problem(seed, watched_count=watched_count, chains=chains)
    exact = fold("exact", v, c, watched, scale=scale)
    fast = fold("fast", v, c, watched, scale=scale)
    assert fast.last_step < 1e-2 and fast.newton_steps < 30
    assert np.abs(fast.mode - exact.mode).max() <= 1e-4
    ratio = np.linalg.eigvals(np.linalg.solve(exact.precision, fast.precision))
    assert np.abs(ratio - 1).max() <= 0.02
    # The modes really are modes: the float64 gradient there is small against its scale.
    assert np.abs(log_posterior_gradient(v, c, watched, fast.mode, scale)).max() < 1e-3


def test_one_pilot_sample_and_small_chunks_give_the_same_modes():
    v, c, watched = problem(5, chains=3)
    base = fold("fast", v, c, watched)
    other = fold("fast", v, c, watched, pilot_samples=1, chunk_samples=5, tol=1e-4)
    assert np.abs(other.mode - base.mode).max() <= 1e-4


@pytest.mark.parametrize("method", ["fast", "exact"])
def test_draws_are_sample_major_and_reproducible(method):
    v, c, watched = problem()
    a = fold(method, v, c, watched, draws=2, seed=5)
    b = fold(method, v, c, watched, draws=2, seed=5)
    assert a.user_embeddings.shape == (2 * K, D) and a.user_bias.shape == (2 * K,)
    assert np.array_equal(a.user_embeddings, b.user_embeddings)
    # Draw t of sample k is row k * draws + t, centred on sample k's mode.
    pairs = a.user_embeddings.reshape(K, 2, D)
    spread = np.abs(pairs - a.mode[:, None, :D]).max()
    assert spread < 5 * np.sqrt(np.linalg.inv(a.precision).diagonal(0, 1, 2).max())


def test_exact_chunks_do_not_change_the_modes():
    v, c, watched = problem()
    a = fold("exact", v, c, watched, seed=5)
    chunked = fold("exact", v, c, watched, seed=5, chunk_samples=5)
    assert np.allclose(chunked.mode, a.mode, atol=1e-8)


def test_bad_input_is_refused_with_the_reason():
    v, c, _ = problem()
    rng = np.random.default_rng(0)
    layout = fold_in_layout(v, c)
    for run in (laplace_fold_in_exact, lambda _v, _c, *a, **k: laplace_fold_in(layout, *a, **k)):
        with pytest.raises(FoldInError, match="indices"):
            run(v, c, np.array([M]), prior_scale=SCALE, rng=rng)
        with pytest.raises(FoldInError, match="prior_scale"):
            run(v, c, np.array([1]), prior_scale=0.0, rng=rng)
    with pytest.raises(FoldInError, match="movie_bias"):
        laplace_fold_in_exact(v, c[:, :-1], np.array([1]), prior_scale=SCALE, rng=rng)
    with pytest.raises(FoldInError, match="movie_bias"):
        fold_in_layout(v, c[:, :-1])
    with pytest.raises(FoldInError, match="fold_in_layout"):
        laplace_fold_in(layout._replace(gram=layout.gram[1:]), [1], prior_scale=SCALE, rng=rng)
    with pytest.raises(FoldInError, match="tol"):
        laplace_fold_in(layout, [1], prior_scale=SCALE, rng=rng, tol=0.0)


def test_prior_predictive_has_the_prior_scale():
    u, b = prior_predictive(4000, 3, prior_scale=2.0, rng=np.random.default_rng(0))
    assert u.shape == (4000, 3) and b.shape == (4000,)
    assert np.std(u) == pytest.approx(2.0, rel=0.05)


def test_layout_logits_are_each_samples_logits():
    v, c, _ = problem()
    rng = np.random.default_rng(3)
    u = rng.normal(0, 1, (K, D)).astype(np.float32)
    b = rng.normal(0, 1, K).astype(np.float32)
    logits = layout_logits(fold_in_layout(v, c), u, b)
    assert logits.shape == (K, M) and logits.dtype == np.float32
    for k in range(K):
        expected = v[k].astype(np.float64) @ u[k] + b[k] + c[k]
        np.testing.assert_allclose(logits[k], expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(FoldInError, match="user draws"):
        layout_logits(fold_in_layout(v, c), u[1:], b[1:])
