"""Fold-in: draw a new user's (U, u) for every posterior sample, given the movies they watched.

For posterior sample k the movie variables (V_k, v_k) are fixed and the new user's
w = (U, u) in R^(D+1) has the posterior of a Bayesian logistic regression over all M movies:
y_j ~ Bernoulli(sigmoid(x_kj . w + v_kj)), x_kj = (V_kj, 1), y_j = 1 for watched movies, 0
otherwise, with the model's prior w ~ N(0, prior_scale^2 I). The Laplace approximation (Bishop,
"Pattern Recognition and Machine Learning", section 4.4; MacKay 1992) replaces it by
N(w*, (-H)^-1), w* the posterior mode and H the Hessian of the log posterior there; each sample
then gets one (or `draws`) exact draw from its Gaussian.

`laplace_fold_in` (served) finds the K modes in float32 from a precomputed layout
(`fold_in_layout`: per sample X_k^T [D+1, M] with the bias row of ones, built once per version):

1. pilot: a few samples spread over the K (different chains, whose latent spaces may be
   rotated against each other) run damped Newton to convergence;
2. warm start: the pilot's logit shifts t_j = x_pj . w*_p, averaged over pilots, are invariant
   to those rotations; each sample starts at their least-squares fit w0_k = G_k^-1 X_k^T t
   (G_k = X_k^T X_k, precomputed), one batched matrix-vector product;
3. Newton over all samples: each step one pass over the layout in chunks of samples that
   stay in cache (forward logits, gradient and the (D+1)x(D+1) negative Hessian
   X_k^T diag(p(1-p)) X_k, float32 BLAS, 21 x 21 solves in float64), until every coordinate
   of every sample moves less than `tol` (default 0.01; 4 steps at ml-1m shape, about 0.67 s
   of CPU at K = 1000 against 5.2 s for the reference, `bench/foldin_speed.py`).

Its error against exact float64 Newton (`laplace_fold_in_exact`, the reference): Newton
converges quadratically near the mode (Nocedal & Wright, "Numerical Optimization", theorem
3.5), so a last step below `tol` leaves the mode within about tol^2 = 1e-4, plus float32
rounding of the gradient (about 1e-5 at ml-1m size); measured at ml-1m shape 7.4e-5 for the
modes and 1.0e-4 for posterior-mean watch probabilities. The covariance is the inverse
negative Hessian at the point before the last step, less than `tol` from the mode: relative
error O(tol), measured under 1%. `tests/common/test_foldin.py` checks modes within 1e-4 and
precisions within 2% of the reference's, rotated chains included.
Both methods are checked against a long single-user HMC run (posterior-mean watch
probabilities: mean absolute difference <= 0.02, top-20 overlap >= 18). An empty watched list
still conditions on "watched nothing" (every y_j = 0); `prior_predictive` draws from the prior
instead (cold start).

Pure NumPy; imports nothing of ours.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "FoldIn",
    "FoldInError",
    "FoldInLayout",
    "fold_in_layout",
    "laplace_fold_in",
    "laplace_fold_in_exact",
    "layout_logits",
    "prior_predictive",
]

METHOD = "laplace"


class FoldInError(ValueError):
    """Bad input to fold-in (shapes, indices or settings); the message says what to change."""


class FoldIn(NamedTuple):
    """Per-sample draws of the new user's variables and how Newton's method went."""

    user_embeddings: np.ndarray  # float32 [K * draws, D]: sample-major (k, then draw)
    user_bias: np.ndarray  # float32 [K * draws]
    mode: np.ndarray  # float64 [K, D+1]: each sample's posterior mode (U*, u*)
    newton_steps: int  # Newton steps over all samples (the slowest chunk's, for the exact one)
    last_step: float  # largest |coordinate change| of the last Newton step, any sample
    precision: np.ndarray  # float64 [K, D+1, D+1]: the Laplace precision -H the draws used


class FoldInLayout(NamedTuple):
    """What `laplace_fold_in` reads, built once per posterior version by `fold_in_layout`.

    At ml-1m x 1000 samples (M = 3706, D = 20) `features` is 311 MB, `offsets` 15 MB.
    """

    features: np.ndarray  # float32 [K, D+1, M]: X_k^T, rows V_k^T then a row of ones
    offsets: np.ndarray  # float32 [K, M]: movie biases v_k
    gram: np.ndarray  # float64 [K, D+1, D+1]: X_k^T X_k (the warm start's least squares)


def _check(
    movie_embeddings: np.ndarray, movie_bias: np.ndarray, watched: np.ndarray, prior_scale: float
) -> np.ndarray:
    if movie_embeddings.ndim != 3 or movie_bias.shape != movie_embeddings.shape[:2]:
        raise FoldInError(
            "movie_embeddings must be [K, M, D] and movie_bias [K, M]; got "
            f"{movie_embeddings.shape} and {movie_bias.shape}"
        )
    if not (np.isfinite(prior_scale) and prior_scale > 0):
        raise FoldInError(f"prior_scale must be a positive number, got {prior_scale}")
    num_movies = movie_embeddings.shape[1]
    index = np.unique(np.asarray(watched, dtype=np.int64))
    if index.size and (index[0] < 0 or index[-1] >= num_movies):
        raise FoldInError(f"watched movie indices must be in [0, {num_movies})")
    return index


def _gradient_and_precision(
    v: np.ndarray, c: np.ndarray, y: np.ndarray, w: np.ndarray, precision: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient [k, D+1] and negative Hessian [k, D+1, D+1] of the log posterior at w."""
    k, _, d = v.shape
    z = np.matmul(v, w[:, :d, None])[..., 0] + w[:, d:] + c  # [k, M] logits
    p = 0.5 * (1.0 + np.tanh(0.5 * z))
    r = y - p
    s = p * (1.0 - p)
    grad = np.empty_like(w)
    grad[:, :d] = np.matmul(r[:, None, :], v)[:, 0] - precision * w[:, :d]
    grad[:, d] = r.sum(axis=1) - precision * w[:, d]
    neg_h = np.empty((k, d + 1, d + 1))
    weighted = v * s[..., None]
    neg_h[:, :d, :d] = np.matmul(weighted.transpose(0, 2, 1), v)
    neg_h[:, :d, d] = neg_h[:, d, :d] = weighted.sum(axis=1)
    neg_h[:, d, d] = s.sum(axis=1)
    neg_h += precision * np.eye(d + 1)
    return grad, neg_h


def _newton_chunk(
    v: np.ndarray,
    c: np.ndarray,
    y: np.ndarray,
    *,
    precision: float,
    max_steps: int,
    tol: float,
) -> tuple[np.ndarray, np.ndarray, int, float]:
    """Modes [k, D+1] and Cholesky factors of -H there for one chunk: v [k, M, D], c [k, M]."""
    k, _, d = v.shape
    w = np.zeros((k, d + 1))
    steps = 0
    while steps < max_steps:
        steps += 1
        grad, neg_h = _gradient_and_precision(v, c, y, w, precision)
        step = np.linalg.solve(neg_h, grad[..., None])[..., 0]
        # A damped step: Newton on this strictly concave target, capped so a far start
        # cannot overshoot; near the mode the cap never binds.
        norm = np.linalg.norm(step, axis=1, keepdims=True)
        step *= np.minimum(1.0, 2.0 / np.maximum(norm, 1e-300))
        w += step
        if np.abs(step).max() < tol:
            break
    grad, neg_h = _gradient_and_precision(v, c, y, w, precision)
    return w, np.linalg.cholesky(neg_h), steps, float(np.abs(step).max(initial=0.0))


def laplace_fold_in_exact(
    movie_embeddings: np.ndarray,
    movie_bias: np.ndarray,
    watched: np.ndarray,
    *,
    prior_scale: float,
    rng: np.random.Generator,
    draws: int = 1,
    max_steps: int = 30,
    tol: float = 1e-6,
    chunk_samples: int = 64,
) -> FoldIn:
    """Reference Laplace fold-in: float64 Newton from zero per chunk of samples, a Hessian
    every step (about 12 s of CPU at ml-1m x 1000 samples; the tests' and bench's yardstick).

    movie_embeddings [K, M, D] and movie_bias [K, M] are the posterior samples (any float
    dtype, memory maps fine); watched: movie indices in [0, M) (repeats ignored);
    prior_scale: the model's prior standard deviation (the version's `config.prior_scale`).
    Newton stops once every coordinate moves less than `tol`, or after `max_steps`.
    Raises `FoldInError` on bad shapes, indices or settings.
    """
    index = _check(movie_embeddings, movie_bias, watched, prior_scale)
    if draws < 1 or max_steps < 1 or chunk_samples < 1:
        raise FoldInError("draws, max_steps and chunk_samples must be >= 1")
    num_samples, num_movies, dim = movie_embeddings.shape
    y = np.zeros(num_movies)
    y[index] = 1.0
    precision = 1.0 / float(prior_scale) ** 2
    modes = np.empty((num_samples, dim + 1))
    out = np.empty((num_samples, draws, dim + 1))
    precisions = np.empty((num_samples, dim + 1, dim + 1))
    worst_steps, worst_step = 0, 0.0
    for lo in range(0, num_samples, chunk_samples):
        hi = min(num_samples, lo + chunk_samples)
        v = np.asarray(movie_embeddings[lo:hi], dtype=np.float64)
        c = np.asarray(movie_bias[lo:hi], dtype=np.float64)
        mode, chol, steps, last = _newton_chunk(
            v, c, y[None, :], precision=precision, max_steps=max_steps, tol=tol
        )
        out[lo:hi] = _draw(mode, chol, draws, rng)
        precisions[lo:hi] = chol @ chol.transpose(0, 2, 1)
        modes[lo:hi] = mode
        worst_steps, worst_step = max(worst_steps, steps), max(worst_step, last)
    return _fold_in(out, modes, worst_steps, worst_step, precisions)


def _draw(mode: np.ndarray, chol: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """[k, draws, D+1] draws of N(mode, (L L^T)^-1): w = mode + L^-T z, z ~ N(0, I)."""
    z = rng.standard_normal((mode.shape[0], mode.shape[1], draws))
    offsets = np.linalg.solve(chol.transpose(0, 2, 1), z)  # [k, D+1, draws]
    return mode[:, None, :] + offsets.transpose(0, 2, 1)


def _fold_in(
    out: np.ndarray, modes: np.ndarray, steps: int, last_step: float, precision: np.ndarray
) -> FoldIn:
    num_samples, draws, dim_1 = out.shape
    flat = out.reshape(num_samples * draws, dim_1).astype(np.float32)
    return FoldIn(
        np.ascontiguousarray(flat[:, : dim_1 - 1]),
        np.ascontiguousarray(flat[:, dim_1 - 1]),
        modes,
        steps,
        last_step,
        precision,
    )


def fold_in_layout(
    movie_embeddings: np.ndarray, movie_bias: np.ndarray, *, chunk_samples: int = 64
) -> FoldInLayout:
    """The per-sample layout `laplace_fold_in` reads, from movie_embeddings [K, M, D] and
    movie_bias [K, M] (any float dtype, any strides: memory maps and transposed views of a
    movie-major copy work; read `chunk_samples` samples at a time)."""
    if movie_embeddings.ndim != 3 or movie_bias.shape != movie_embeddings.shape[:2]:
        raise FoldInError(
            "movie_embeddings must be [K, M, D] and movie_bias [K, M]; got "
            f"{movie_embeddings.shape} and {movie_bias.shape}"
        )
    if chunk_samples < 1:
        raise FoldInError("chunk_samples must be >= 1")
    num_samples, num_movies, dim = movie_embeddings.shape
    features = np.empty((num_samples, dim + 1, num_movies), dtype=np.float32)
    features[:, dim] = 1.0
    offsets = np.empty((num_samples, num_movies), dtype=np.float32)
    gram = np.empty((num_samples, dim + 1, dim + 1))
    for lo in range(0, num_samples, chunk_samples):
        hi = min(num_samples, lo + chunk_samples)
        features[lo:hi, :dim] = movie_embeddings[lo:hi].transpose(0, 2, 1)
        offsets[lo:hi] = movie_bias[lo:hi]
        x = features[lo:hi]
        gram[lo:hi] = np.matmul(x, x.transpose(0, 2, 1))
    return FoldInLayout(features, offsets, gram)


class _Pass:
    """One pass over the layout: gradient [K, D+1] and negative Hessian [K, D+1, D+1] of
    every sample's log posterior at w [K, D+1], float32 products, float64 results.

    Samples go `chunk` at a time so a chunk's X_k^T (chunk x 21 x M floats, 1.2 MB for 4
    samples at ml-1m) is read from memory once and reused from cache for the logits, the
    gradient and the Hessian; the buffers are allocated once per fold-in.
    """

    def __init__(self, layout: FoldInLayout, chunk: int) -> None:
        num_movies = layout.features.shape[2]
        self.layout, self.chunk = layout, chunk
        self.prob = np.empty((chunk, num_movies), dtype=np.float32)
        self.scaled = np.empty_like(layout.features[:chunk])

    def __call__(
        self, w: np.ndarray, watched_sum: np.ndarray, precision: float
    ) -> tuple[np.ndarray, np.ndarray]:
        features, offsets = self.layout.features, self.layout.offsets
        num_samples, dim_1, _ = features.shape
        w32 = w.astype(np.float32)[:, None, :]  # [K, 1, D+1]
        grad = np.empty((num_samples, dim_1))
        neg_h = np.empty((num_samples, dim_1, dim_1))
        for lo in range(0, num_samples, self.chunk):
            hi = min(num_samples, lo + self.chunk)
            x, p, scaled = features[lo:hi], self.prob[: hi - lo], self.scaled[: hi - lo]
            np.matmul(w32[lo:hi], x, out=p[:, None, :])  # logits less the bias v_k
            p += offsets[lo:hi]
            p *= 0.5  # sigmoid(z) = (1 + tanh(z / 2)) / 2 (no overflow for any z)
            np.tanh(p, out=p)
            p *= 0.5
            p += 0.5
            grad[lo:hi] = np.matmul(x, p[:, :, None])[..., 0]
            p *= 1.0 - p  # the weights p(1 - p) of the negative Hessian X^T diag(.) X
            np.sqrt(p, out=p)
            np.multiply(x, p[:, None, :], out=scaled)
            neg_h[lo:hi] = np.matmul(scaled, scaled.transpose(0, 2, 1))
        grad = watched_sum - grad - precision * w
        neg_h += precision * np.eye(dim_1)
        return grad, neg_h


def _newton(
    step_pass: _Pass,
    w: np.ndarray,
    watched_sum: np.ndarray,
    *,
    precision: float,
    max_steps: int,
    tol: float,
) -> tuple[np.ndarray, np.ndarray, int, float]:
    """Damped Newton from w [K, D+1] until every coordinate moves less than `tol`: the modes,
    the negative Hessian at the point before the last step, the steps and the last step."""
    steps, last = 0, np.inf
    while True:
        steps += 1
        grad, neg_h = step_pass(w, watched_sum, precision)
        step = np.linalg.solve(neg_h, grad[..., None])[..., 0]
        # Capped as in the exact method, so a far start cannot overshoot; near the mode
        # the cap never binds.
        norm = np.linalg.norm(step, axis=1, keepdims=True)
        step *= np.minimum(1.0, 2.0 / np.maximum(norm, 1e-300))
        w = w + step
        last = float(np.abs(step).max(initial=0.0))
        if last < tol or steps >= max_steps:
            return w, neg_h, steps, last


def laplace_fold_in(
    layout: FoldInLayout,
    watched: np.ndarray,
    *,
    prior_scale: float,
    rng: np.random.Generator,
    draws: int = 1,
    pilot_samples: int = 4,
    max_steps: int = 30,
    tol: float = 1e-2,
    chunk_samples: int = 4,
) -> FoldIn:
    """Laplace fold-in of one new user: `draws` draws of (U, u) per posterior sample.

    layout: `fold_in_layout` of the posterior's movie samples (K samples, M movies, D);
    watched: movie indices in [0, M) (repeats ignored); prior_scale: the model's prior
    standard deviation (the version's `config.prior_scale`). The method (pilot, warm start,
    float32 Newton until every coordinate moves less than `tol`) is the module docstring's.
    `newton_steps` counts the steps over all samples, the pilot's not included. Raises
    `FoldInError` on bad shapes, indices or settings.
    """
    features, offsets, gram = layout
    num_samples, dim_1, num_movies = features.shape
    if (
        features.dtype != np.float32
        or offsets.shape != (num_samples, num_movies)
        or gram.shape != (num_samples, dim_1, dim_1)
    ):
        raise FoldInError("layout must come from fold_in_layout")
    index = _check(features.transpose(0, 2, 1), offsets, watched, prior_scale)
    if min(draws, pilot_samples, max_steps, chunk_samples) < 1 or not tol > 0:
        raise FoldInError("draws, pilot_samples, max_steps and chunk_samples must be >= 1, tol > 0")
    precision = 1.0 / float(prior_scale) ** 2
    watched_sum = features[:, :, index].sum(axis=2, dtype=np.float64)  # [K, D+1]: sum x_kj

    pilot = np.unique(np.linspace(0, num_samples - 1, min(pilot_samples, num_samples)).round())
    pilot = pilot.astype(np.intp)
    pilot_layout = FoldInLayout(features[pilot], offsets[pilot], gram[pilot])
    pilot_mode, _, _, _ = _newton(
        _Pass(pilot_layout, chunk_samples),
        np.zeros((pilot.size, dim_1)),
        watched_sum[pilot],
        precision=precision,
        max_steps=max_steps,
        tol=tol * 1e-2,
    )
    # Rotation-invariant logit shifts x_pj . w*_p, averaged over the pilot, fitted per sample.
    shift = np.matmul(pilot_mode[:, None, :].astype(np.float32), pilot_layout.features)
    target = shift[:, 0].mean(axis=0)  # [M] float32
    moments = np.matmul(features.reshape(num_samples * dim_1, num_movies), target)
    start = np.linalg.solve(gram, moments.reshape(num_samples, dim_1, 1).astype(np.float64))

    mode, neg_h, steps, last = _newton(
        _Pass(layout, chunk_samples),
        start[..., 0],
        watched_sum,
        precision=precision,
        max_steps=max_steps,
        tol=tol,
    )
    out = _draw(mode, np.linalg.cholesky(neg_h), draws, rng)
    return _fold_in(out, mode, steps, last, neg_h)


def layout_logits(
    layout: FoldInLayout, user_embeddings: np.ndarray, user_bias: np.ndarray
) -> np.ndarray:
    """Every movie's logit U_k . V_kj + u_k + v_kj for one user's draws, float32 [K, M].

    user_embeddings [K, D] and user_bias [K] pair with the layout's K samples (one draw per
    sample, as `laplace_fold_in(draws=1)` and `prior_predictive` give). One vector-matrix
    product per sample over the contiguous X_k^T (its row of ones adds u_k).
    """
    features, offsets, _ = layout
    num_samples, dim_1, _ = features.shape
    if user_embeddings.shape != (num_samples, dim_1 - 1) or user_bias.shape != (num_samples,):
        raise FoldInError(
            f"user draws must be [{num_samples}, {dim_1 - 1}] and [{num_samples}]; got "
            f"{user_embeddings.shape} and {user_bias.shape}"
        )
    w = np.empty((num_samples, 1, dim_1), dtype=np.float32)
    w[:, 0, : dim_1 - 1] = user_embeddings
    w[:, 0, dim_1 - 1] = user_bias
    logits = np.matmul(w, features)[:, 0]
    logits += offsets
    return logits


def prior_predictive(
    num_samples: int, latent_dim: int, *, prior_scale: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Cold start: one prior draw of (U [K, D], u [K]) per posterior sample, float32."""
    if not (np.isfinite(prior_scale) and prior_scale > 0):
        raise FoldInError(f"prior_scale must be a positive number, got {prior_scale}")
    w = (prior_scale * rng.standard_normal((num_samples, latent_dim + 1))).astype(np.float32)
    return np.ascontiguousarray(w[:, :latent_dim]), np.ascontiguousarray(w[:, latent_dim])
