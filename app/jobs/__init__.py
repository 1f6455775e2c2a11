"""Retraining jobs: a runner owned by the server starts each job's training through a
launcher (a separate OS process, or a Slurm batch job), one job at a time by default, and
watches it through the SQLite job store."""
