"""Fake eight CPU devices before anything imports JAX."""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest

from tests.helpers.movielens_files import write_ml1m, write_ml100k


@pytest.fixture
def ml1m_dir(tmp_path):
    """A tiny ml-1m folder in the exact GroupLens format."""
    return write_ml1m(tmp_path / "ml-1m")


@pytest.fixture
def ml100k_dir(tmp_path):
    """A tiny ml-100k folder in the exact GroupLens format."""
    return write_ml100k(tmp_path / "ml-100k")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A single-node Slurm on this machine for the whole test run (tests/helpers/slurm_helpers.py)."""
    from tests.helpers.slurm_helpers import start_cluster, stop_cluster

    cluster = start_cluster(tmp_path_factory.mktemp("slurm"))
    yield cluster
    stop_cluster(cluster)
