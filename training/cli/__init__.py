"""`python -m training`: argparse only. `main` parses, the subcommand modules build their
settings once and call into `training.run` and `training.evaluation`."""
