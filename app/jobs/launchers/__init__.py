"""Launchers: how a job's training runs, as a local child process (`local`) or as a Slurm
batch job (`slurm`), behind one small interface (`base.Launcher`)."""
