"""Retraining jobs: a runner owned by the server starts the training CLI as separate OS
processes, one job at a time by default, and watches them through the SQLite job store."""
