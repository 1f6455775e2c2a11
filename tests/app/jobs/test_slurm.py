"""The Slurm job backend against a real single-node Slurm (scripts/slurm-local), through the
HTTP API with the real `smoke` training: the pending reason of a held job, running progress,
success and hot swap, cancel, a failing job, rejected submissions, a server restart while a
job runs, a requeue that resumes from the checkpoint, two srun tasks x 4 fake CPU devices
giving the single-process samples, and a time-limit kill.

Run them alone with `pytest -m slurm`. A persistent JAX compilation cache shared by the
module keeps the training runs after the first one short.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.jobs.launchers.slurm_config import SlurmSettings
from app.main import create_app
from app.settings import Settings
from storage.job_store import JobStore
from storage.posterior import list_versions, open_posterior
from tests.helpers.job_helpers import wait_for
from tests.helpers.slurm_helpers import SlurmCluster

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

TOKEN = "slurm-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# The uninterrupted run that the requeued one must reproduce exactly: 101 segments of 20
# iterations, long enough (about 10 s on an idle machine; 600 iterations took 3 s) for a
# requeue to land in the middle rather than after its last segment.
# Long enough per iteration (100 leapfrog steps) that the requeue test catches it running: at
# the smoke preset's 5 steps an idle machine finished all 2,020 iterations (2 s) before the
# server's next look, and Slurm then requeued a completed job.
RUN = {"preset": "smoke", "seed": 5, "num_burnin_steps": 2000, "num_leapfrog_steps": 100}
# Runs until stopped: 10 million leapfrog steps, minutes even on an idle machine (the smoke
# preset's 5 steps per iteration finished 100,000 iterations inside Slurm's 1-minute limit).
LONG = {"preset": "smoke", "num_burnin_steps": 100_000, "num_leapfrog_steps": 100}
FINISHED = ("succeeded", "failed", "cancelled")


class Server:
    """The app on a store, with the Slurm backend, that can be restarted in place."""

    def __init__(self, root: Path, cluster: SlurmCluster, **slurm: Any):
        self.root = root
        self.settings = Settings(
            store_dir=root / "store",
            data_dir=root / "data",
            cache_dir=root / "cache",
            poll_interval_s=0,  # only the runner's reload swaps versions in
            api_token=TOKEN,
            job_backend="slurm",
            job_poll_interval_s=0.2,
            max_concurrent_jobs=4,  # the cluster queues them
            slurm=SlurmSettings(conf=cluster.conf, poll_interval_s=0.3, **slurm),
        )
        (root / "data").mkdir(parents=True, exist_ok=True)
        self._stack: ExitStack | None = None
        self.client: TestClient

    def start(self) -> Server:
        self._stack = ExitStack()
        self.client = self._stack.enter_context(TestClient(create_app(self.settings)))
        return self

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def submit(self, **body: Any) -> str:
        response = self.client.post("/jobs", json=body, headers=AUTH)
        assert response.status_code == 202, response.text
        return response.json()["id"]

    def job(self, job_id: str) -> dict[str, Any]:
        return self.client.get(f"/jobs/{job_id}", headers=AUTH).json()

    def wait(self, job_id: str, *statuses: str, timeout_s: float = 240.0) -> dict[str, Any]:
        """The job once its status is one of `statuses` and, for a finished status, Slurm
        has ended it too (the training reports its outcome before its process exits)."""

        def reached() -> dict[str, Any] | None:
            job = self.job(job_id)
            if job["status"] not in statuses:
                return None
            scheduler = job["scheduler"] or {}
            if job["status"] in FINISHED and scheduler.get("state") in ("pending", "running"):
                return None
            return job

        return wait_for(reached, timeout_s=timeout_s, what=f"job {job_id} to be {statuses}")

    def log(self, job_id: str) -> str:
        lines = self.client.get(f"/jobs/{job_id}/logs", params={"lines": 10_000}, headers=AUTH)
        return "\n".join(lines.json()["lines"])

    def served(self) -> str | None:
        response = self.client.get("/recommend/1", params={"k": 1})
        return response.json()["model_version"] if response.status_code == 200 else None


@pytest.fixture(scope="module")
def jax_cache(tmp_path_factory):
    """The environment the jobs inherit (sbatch exports it): a shared compilation cache,
    and not this process's 8 fake devices (conftest.py), with which a job on
    jax.distributed would put all 8 on its mesh and talk between them through gloo."""
    cache = tmp_path_factory.mktemp("jax-cache")
    changes = {
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
        "XLA_FLAGS": None,
    }
    saved = {k: os.environ.get(k) for k in changes}
    for key, value in changes.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    yield cache
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def timed_out(slurm_cluster, jax_cache, tmp_path_factory):
    """A job with Slurm's shortest time limit (1 minute), submitted when the module starts
    so that its minute passes while the other tests run. Its own server runs the training
    under `nice -n 19`, so it takes only CPU time the other tests leave."""
    server = Server(tmp_path_factory.mktemp("timeout"), slurm_cluster)
    server.settings.job_program = ["nice", "-n", "19", sys.executable, "-m", "training", "train"]
    server.start()
    job_id = server.submit(**LONG, slurm={"time_limit": "1"})
    yield server, job_id
    server.stop()


@pytest.fixture(scope="module")
def server(slurm_cluster, jax_cache, timed_out, tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("cluster"), slurm_cluster).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def finished_run(server, slurm_cluster):
    """RUN, submitted held: its pending reason, then released: progress while running,
    success, hot swap. Returns (job, samples)."""
    job_id = server.submit(**RUN, slurm={"sbatch": ["--hold"]})
    held = wait_for(
        lambda: (j := server.job(job_id))["scheduler"]["reason"] == "JobHeldUser" and j,
        what="Slurm's pending reason",
    )
    assert held["status"] == "queued" and held["scheduler"]["state"] == "pending"
    assert held["started_at"] is None and held["backend"] == "slurm"
    slurm_id = held["scheduler"]["job_id"]
    assert slurm_cluster.field(slurm_id, "JobState") == "PENDING"
    slurm_cluster.run("scontrol", "release", slurm_id)

    running = wait_for(
        lambda: (
            (j := server.job(job_id))["status"] == "running"
            and (j["progress"]["iteration"] or 0) > 0
            and j
        ),
        timeout_s=240,
        what="progress while running",
    )
    assert running["scheduler"]["state"] == "running" and running["started_at"] is not None
    assert running["progress"]["phase"] in ("burnin", "sampling")
    done = server.wait(job_id, "succeeded", "failed")
    assert done["status"] == "succeeded", server.log(job_id)[-3000:]
    assert done["scheduler"]["state"] == "completed" and done["error"] is None
    wait_for(lambda: server.served() == done["version"], what="hot swap to the new version")
    posterior = open_posterior(server.settings.store_dir, done["version"])
    try:
        samples = {k: np.array(v) for k, v in posterior.samples().items()}
    finally:
        posterior.close()
    return done, samples


def test_held_job_pends_with_slurms_reason_then_runs_and_is_served(server, finished_run):
    done, samples = finished_run
    log = server.log(done["id"])
    assert "=== attempt 1: sbatch" in log and f"=== Slurm job {done['scheduler']['job_id']}" in log
    script = (server.settings.store_dir / "jobs" / done["id"] / "job.sbatch").read_text()
    assert "#SBATCH --requeue" in script and "--distributed auto" in script
    assert all(np.all(np.isfinite(v)) for v in samples.values())


def test_a_job_survives_a_server_restart_and_is_cancelled_with_scancel(server, slurm_cluster):
    before = len(list_versions(server.settings.store_dir))
    job_id = server.submit(**LONG)
    running = wait_for(
        lambda: ((j := server.job(job_id))["progress"]["iteration"] or 0) >= 20 and j,
        timeout_s=240,
        what="the first segment",
    )
    slurm_id = running["scheduler"]["job_id"]
    server.stop()
    assert slurm_cluster.field(slurm_id, "JobState") == "RUNNING"  # Slurm's, not the server's
    server.start()  # a new app and runner on the same store find it by its Slurm job id
    wait_for(
        lambda: server.job(job_id)["progress"]["iteration"] > running["progress"]["iteration"],
        timeout_s=120,
        what="progress after the restart",
    )
    assert server.job(job_id)["status"] == "running"

    assert server.client.delete(f"/jobs/{job_id}", headers=AUTH).status_code == 202
    done = server.wait(job_id, "cancelled", "failed", timeout_s=60)
    assert done["status"] == "cancelled" and done["error"] == "cancelled on request"
    assert done["scheduler"] == {"job_id": slurm_id, "state": "cancelled", "reason": None}
    assert slurm_cluster.field(slurm_id, "JobState") == "CANCELLED"
    assert len(list_versions(server.settings.store_dir)) == before
    assert "nothing was published" in server.log(job_id)  # SIGTERM, stopped at a boundary


def test_a_failing_training_reports_its_own_error(server):
    (server.root / "data" / "broken.zip").write_bytes(b"not a zip")
    job_id = server.submit(preset="smoke", data="broken.zip")
    done = server.wait(job_id, "failed")
    assert "not a zip archive or a folder of GroupLens files" in done["error"]  # its outcome file
    assert done["scheduler"]["state"] == "failed"  # exit code 2: Slurm's FAILED


@pytest.mark.parametrize(
    ("slurm", "said"),
    [
        ({"partition": "nosuch"}, "Invalid partition name specified"),
        # `restricted` allows only account shardlens, which no accounting database vouches for
        ({"partition": "restricted", "account": "nobody"}, "Invalid account"),
    ],
)
def test_a_refused_submission_fails_the_job_with_slurms_message(server, slurm, said):
    job_id = server.submit(preset="smoke", slurm=slurm)
    done = server.wait(job_id, "failed", timeout_s=60)
    assert done["error"].startswith("Slurm refused the job: sbatch failed")
    assert said in done["error"] and done["scheduler"]["job_id"] is None  # never submitted
    assert server.client.get("/healthz").status_code == 200


def test_missing_commands_and_an_unreachable_controller_fail_the_job_not_the_server(
    slurm_cluster, tmp_path
):
    # A copy of the cluster's config pointing at a port nobody listens on; MessageTimeout=1
    # makes sbatch give up at once instead of after its usual retries.
    dead = tmp_path / "dead.conf"
    text = re.sub(r"(?m)^SlurmctldPort=\d+$", "SlurmctldPort=1", slurm_cluster.conf.read_text())
    dead.write_text(text + "MessageTimeout=1\n")
    cases = [
        ({"conf": dead}, "Unable to contact slurm controller"),
        ({"bin_dir": tmp_path / "empty"}, "'sbatch' was not found in"),
    ]
    for i, (slurm, said) in enumerate(cases):
        server = Server(tmp_path / f"server{i}", slurm_cluster)
        server.settings.slurm = server.settings.slurm.model_copy(update=slurm)
        server.start()
        try:
            job_id = server.submit(preset="smoke")
            done = server.wait(job_id, "failed", timeout_s=60)
            assert done["error"].startswith("Slurm refused the job") and said in done["error"]
            assert server.client.get("/healthz").status_code == 200
        finally:
            server.stop()


def test_options_off_the_allow_list_are_refused_at_submit(server):
    for option, said in [("--signal=USR1@60", "not allowed"), ("--output=/tmp/x", "set by")]:
        response = server.client.post(
            "/jobs", json={"preset": "smoke", "slurm": {"sbatch": [option]}}, headers=AUTH
        )
        assert response.status_code == 422 and said in response.text, response.text
    response = server.client.post(
        "/jobs",
        json={"preset": "smoke", "devices": 3, "slurm": {"tasks_per_node": 2}},
        headers=AUTH,
    )
    assert response.status_code == 422 and "split evenly" in response.text


def test_a_job_slurm_has_forgotten_fails_with_the_reason(server):
    store = JobStore(server.settings.store_dir / "jobs.sqlite3")
    job = store.create(config={"preset": "smoke"}, backend="slurm")
    store.mark_running(job.id)
    store.set_external_id(job.id, "987654")  # no such Slurm job
    server.stop()
    server.start()
    done = server.wait(job.id, "failed", timeout_s=60)
    assert "Slurm no longer knows job 987654" in done["error"]


def test_a_requeued_job_resumes_from_its_checkpoint_with_the_same_samples(
    server, slurm_cluster, finished_run
):
    _, reference_samples = finished_run
    job_id = server.submit(**RUN)
    wait_for(
        lambda: (server.job(job_id)["progress"]["iteration"] or 0) >= 60,
        timeout_s=240,
        what="three segments (checkpointed)",
    )
    slurm_id = server.job(job_id)["scheduler"]["job_id"]
    # Requeued held, so the job stays pending until released: without the hold, a fast
    # machine can restart it before the server's next look and "queued" is never seen.
    slurm_cluster.run("scontrol", "requeuehold", slurm_id)
    wait_for(
        lambda: slurm_cluster.field(slurm_id, "JobState") == "PENDING",
        timeout_s=60,
        what="the requeued job to pend",
    )
    queued = server.wait(job_id, "queued", "succeeded", "failed", timeout_s=60)
    assert queued["status"] == "queued", server.log(job_id)[-3000:]
    slurm_cluster.run("scontrol", "release", slurm_id)
    # Slurm holds a requeued job back for a while (BeginTime); let it start now.
    slurm_cluster.run("scontrol", "update", f"JobId={slurm_id}", "StartTime=now")
    done = server.wait(job_id, "succeeded", "failed")
    assert done["status"] == "succeeded", server.log(job_id)[-3000:]
    assert slurm_cluster.field(slurm_id, "Restarts") == "1"
    log = server.log(job_id)
    assert f"=== Slurm job {slurm_id}, restart 1" in log and "--resume" in log
    resumed = log.split(f"=== Slurm job {slurm_id}, restart 1")[1]
    first = [int(m) for m in re.findall(r"^(?:burnin|sampling)\s+(\d+)/", resumed, re.M)]
    assert first and first[0] > 60, resumed[-3000:]  # from its checkpoint, not iteration 0
    posterior = open_posterior(server.settings.store_dir, done["version"])
    try:
        for name, value in reference_samples.items():
            np.testing.assert_array_equal(posterior.samples()[name], value, err_msg=name)
    finally:
        posterior.close()


def test_two_srun_tasks_of_4_devices_give_the_single_process_8_device_samples(server, tmp_path):
    short = {"preset": "smoke", "num_burnin_steps": 20, "num_results": 20}  # two segments
    job_id = server.submit(**short, devices=8, reduction="ordered", slurm={"tasks_per_node": 2})
    reference_store = tmp_path / "reference"
    subprocess.run(  # meanwhile: one process with 8 fake CPU devices
        [sys.executable, "-m", "training", "train", "--preset", "smoke", "--devices", "8",
         "--num-burnin-steps", "20", "--num-results", "20",
         "--reduction", "ordered", "--store", str(reference_store)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    done = server.wait(job_id, "succeeded", "failed")
    log = server.log(job_id)
    assert done["status"] == "succeeded", log[-3000:]
    assert "2 task(s)" in log and "process 1/2 done; process 0 published" in log
    got, want = (
        open_posterior(server.settings.store_dir, done["version"]),
        open_posterior(reference_store, "latest"),
    )
    try:
        assert got.manifest["config"]["devices"] == want.manifest["config"]["devices"] == 8
        for name, value in want.samples().items():
            np.testing.assert_array_equal(got.samples()[name], value, err_msg=name)  # bit-exact
    finally:
        got.close()
        want.close()


def test_a_job_past_its_time_limit_fails_with_slurms_reason(timed_out, slurm_cluster):
    server, job_id = timed_out
    done = server.wait(job_id, "failed", "succeeded", timeout_s=240)
    assert done["status"] == "failed" and done["scheduler"]["state"] == "timeout"
    assert "reached its time limit (00:01:00)" in done["error"]
    assert "JobState=TIMEOUT Reason=TimeLimit" in done["error"]
    assert "DUE TO TIME LIMIT" in done["error"]  # slurmstepd's own notice from the log
    assert list_versions(server.settings.store_dir) == []
