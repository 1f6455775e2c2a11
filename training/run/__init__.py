"""One training run around the sampler: compiled segments, the loop with checkpoints, the
memory plan, diagnostics, the convergence gate, progress, publishing and job reporting."""
