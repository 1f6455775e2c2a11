"""Versioned, checksummed posterior samples and the records of training jobs."""
