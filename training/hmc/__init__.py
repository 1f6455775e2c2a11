"""The sampler's mathematics: the TFP model, momenta, the fast target (with its
double-float arithmetic), the HMC kernels and their warmup adaptation (Stan windows, ChEES)."""
