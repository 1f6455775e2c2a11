"""Training: MovieLens -> watch matrix -> sharded Bayesian matrix factorization -> HMC."""
