"""The Slurm backend without a cluster: Slurm's states from recorded `scontrol show job -o`
output (tests/data/scontrol/, recorded on the local test cluster; OUT_OF_MEMORY adapted,
since it needs cgroups), the batch script, resources and their checks, the client's errors,
and the launcher's view of a controller that cannot be reached or has forgotten a job."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest

from app.jobs.command import training_command
from app.jobs.launchers.base import Handle, Observation
from app.jobs.launchers.slurm import SlurmLauncher, job_files
from app.jobs.launchers.slurm_client import SlurmClient, SlurmCommandError
from app.jobs.launchers.slurm_config import (
    ResourceError,
    SlurmResources,
    SlurmSettings,
    effective_resources,
    local_devices,
)
from app.jobs.launchers.slurm_script import render_script
from app.jobs.launchers.slurm_state import (
    KINDS,
    describe_end,
    kind_of,
    parse_fields,
    parse_sacct,
    parse_scontrol,
    stepd_messages,
)
from app.jobs.runner import JobRunner
from storage.job_outcome import Outcome, OutcomeError, read_outcome, write_outcome
from storage.job_store import JobStore
from tests.helpers.job_helpers import wait_for
from training.run.job_reporting import BoundaryStop, JobInterrupted, OutcomeReporter

RECORDED = Path(__file__).resolve().parents[2] / "data" / "scontrol"


def _recorded(name: str):
    return parse_scontrol((RECORDED / f"{name}.txt").read_text())


@pytest.mark.parametrize(
    ("name", "kind", "state", "reason"),
    [
        ("pending_held", "pending", "PENDING", "JobHeldUser"),
        ("pending_resources", "pending", "PENDING", "Resources"),
        ("pending_requeued", "pending", "PENDING", "BeginTime"),
        ("running", "running", "RUNNING", None),
        ("completed", "completed", "COMPLETED", None),
        ("failed", "failed", "FAILED", "NonZeroExitCode"),
        ("cancelled", "cancelled", "CANCELLED", None),
        ("timeout", "timeout", "TIMEOUT", "TimeLimit"),
        ("node_fail", "node_fail", "NODE_FAIL", "NodeDown"),
        ("out_of_memory", "out_of_memory", "OUT_OF_MEMORY", "OutOfMemory"),
    ],
)
def test_recorded_scontrol_output_maps_onto_the_job_states(name, kind, state, reason):
    job = _recorded(name)
    assert (job.kind, job.state, job.reason) == (kind, state, reason)
    assert job.ended == (kind not in ("pending", "running"))
    assert job.job_id.isdigit() and job.fields["JobName"]
    assert (job.start_time is None) == (kind == "pending")  # an estimate is not a start


def test_every_state_is_covered_and_unknown_states_never_end_a_job():
    assert set(KINDS) == {
        "pending", "running", "completed", "failed", "cancelled", "timeout", "node_fail",
        "out_of_memory",
    }  # fmt: skip
    assert kind_of("CANCELLED by 0") == "cancelled"  # sacct's spelling
    assert kind_of("RUNNING+") == "running"
    assert kind_of("REQUEUED") == kind_of("REQUEUE_HOLD") == "pending"
    assert kind_of("COMPLETING") == kind_of("SUSPENDED") == "running"
    assert kind_of("BOOT_FAIL") == kind_of("DEADLINE") == kind_of("PREEMPTED") == "failed"
    assert kind_of("SOMETHING_NEW") == "running"


def test_fields_keep_blanks_and_equals_signs_inside_values():
    fields = parse_fields("JobId=7 Command=/data/my run/job.sh TRES=cpu=1,node=1 CPUs/Task=2")
    assert fields == {
        "JobId": "7",
        "Command": "/data/my run/job.sh",
        "TRES": "cpu=1,node=1",
        "CPUs/Task": "2",
    }
    with pytest.raises(ValueError, match="no job record"):
        parse_scontrol("slurm_load_jobs error: Invalid job id specified")


def test_sacct_lines_are_read_when_the_controller_has_forgotten_the_job():
    out = (
        "41|TIMEOUT|0:0|TimeLimit|2026-11-29T19:33:55|00:01:00|node7\n42|COMPLETED|0:0|None|x|1|n\n"
    )
    job = parse_sacct(out, "41")
    assert job is not None and (job.kind, job.reason, job.time_limit) == (
        "timeout",
        "TimeLimit",
        "00:01:00",
    )
    assert parse_sacct("43|CANCELLED by 0|0:15|None|Unknown|1|n", "43").kind == "cancelled"  # type: ignore[union-attr]
    assert parse_sacct(out, "99") is None


def test_ended_jobs_are_explained_in_slurms_words():
    notice = [
        "slurmstepd-n1: error: *** JOB 4 ON n1 CANCELLED AT 2026-11-29T19:34:58 DUE TO TIME LIMIT ***"
    ]
    text = describe_end(_recorded("timeout"), notices=stepd_messages(notice))
    assert (
        "reached its time limit (00:01:00)" in text and "JobState=TIMEOUT Reason=TimeLimit" in text
    )
    assert "DUE TO TIME LIMIT" in text and "resume" in text
    assert "ran out of memory" in describe_end(_recorded("out_of_memory"))
    assert "--mem" in describe_end(_recorded("out_of_memory"))
    assert "a node of Slurm job" in describe_end(_recorded("node_fail"))
    assert "ExitCode=3:0" in describe_end(_recorded("failed"))
    assert "not through the API" in describe_end(_recorded("cancelled"))
    assert "reported no result" in describe_end(_recorded("completed"))


# -- resources and the batch script ---------------------------------------------------------


def test_job_resources_override_the_server_defaults_and_options_are_checked():
    settings = SlurmSettings(partition="cpu", time_limit="02:00:00", tasks_per_node=2)
    merged = effective_resources(settings, {"partition": "gpu", "gpus_per_node": 4})
    assert (merged.partition, merged.time_limit, merged.tasks_per_node) == ("gpu", "02:00:00", 2)
    assert merged.gpus_per_node == 4 and merged.nodes == 1
    assert effective_resources(settings, {"sbatch": ["--qos=high", "--exclusive"]}).sbatch == [
        "--qos=high",
        "--exclusive",
    ]
    for bad, said in [
        ("--signal=USR1@60", "not allowed"),
        ("--output=/tmp/x", "set by the Slurm backend"),
        ("--comment=two words", "--name or --name=value"),
        ("--qos=a\n#SBATCH --output=/x", "--name or --name=value"),
        ("qos=high", "--name or --name=value"),
    ]:
        with pytest.raises(ResourceError, match=said):
            effective_resources(settings, {"sbatch": [bad]})
    with pytest.raises(ValueError):
        SlurmResources.model_validate({"time_limit": "soon"})
    with pytest.raises(ValueError):
        SlurmResources.model_validate({"partition": "gpu; rm -rf /"})


def test_fake_cpu_devices_split_over_the_tasks_and_gpu_jobs_get_none():
    two = SlurmResources(nodes=1, tasks_per_node=2)
    assert local_devices(8, two) == 4 and local_devices(None, two) is None
    assert local_devices(8, SlurmResources(tasks_per_node=2, gpus_per_node=4)) is None
    with pytest.raises(ResourceError, match="split evenly over 2"):
        local_devices(3, two)


def test_the_batch_script_requeues_resumes_and_runs_every_task_under_srun(tmp_path):
    argv = training_command(
        {"preset": "smoke", "seed": 3},
        job_id="abc",
        store_dir=tmp_path / "my store",
        db_path=None,
        program=("/venv/bin/python", "-m", "training", "train"),
        extra=["--distributed", "auto"],
    )
    assert "--job-id" not in argv and "--jobs-db" not in argv
    resources = SlurmResources(
        nodes=2, tasks_per_node=4, gpus_per_node=4, partition="gpu", time_limit="1:00:00",
        account="ml", sbatch=["--qos=high"],
    )  # fmt: skip
    script = render_script(
        job_id="abc", attempt=1, argv=argv, log=tmp_path / "j.log", resources=resources,
        admin_lines=["--constraint=a100"],
    )  # fmt: skip
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    for directive in [
        "--job-name=shardlens-abc", "--requeue", "--open-mode=append", "--nodes=2",
        "--ntasks-per-node=4", "--gpus-per-node=4", "--partition=gpu", "--time=1:00:00",
        "--account=ml", "--constraint=a100", "--qos=high",
    ]:  # fmt: skip
        assert f"#SBATCH {directive}" in lines
    srun = lines[-1]
    assert srun.startswith("exec srun --kill-on-bad-exit=1 /venv/bin/python -m training train")
    assert f"'{tmp_path / 'my store'}'" in srun and srun.endswith("${resume}")
    assert 'if [ 1 -gt 1 ] || [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; then resume=--resume' in script
    again = render_script(
        job_id="abc", attempt=2, argv=argv, log=tmp_path / "j.log", resources=resources
    )
    assert "if [ 2 -gt 1 ]" in again


# -- the client and the launcher -------------------------------------------------------------


def _fake_command(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_missing_commands_and_failures_carry_slurms_message(tmp_path):
    client = SlurmClient(bin_dir=tmp_path, timeout_s=5)
    with pytest.raises(SlurmCommandError, match=r"'sbatch' was not found in .*slurm-client"):
        client.submit(tmp_path / "job.sbatch")
    _fake_command(
        tmp_path,
        "sbatch",
        "echo 'sbatch: error: Batch job submission failed: Invalid partition name specified' >&2; exit 1",
    )
    with pytest.raises(SlurmCommandError, match=r"exit 1.*Invalid partition name specified"):
        client.submit(tmp_path / "job.sbatch")
    _fake_command(
        tmp_path, "scontrol", "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1"
    )
    assert client.show_job("12") is None  # forgotten: not an error
    _fake_command(tmp_path, "scontrol", "sleep 5")
    with pytest.raises(SlurmCommandError, match="did not answer within 1 s"):
        SlurmClient(bin_dir=tmp_path, timeout_s=1).show_job("12")
    _fake_command(tmp_path, "sacct", "echo 'Slurm accounting storage is disabled' >&2; exit 1")
    assert client.accounting("12") is None
    _fake_command(tmp_path, "sbatch", "echo '123;cluster'")
    assert client.submit(tmp_path / "job.sbatch") == "123"


class _Client:
    """A SlurmClient stand-in that answers from a list, or raises."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.cancelled: list[str] = []

    def show_job(self, job_id):
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def accounting(self, job_id):
        return None

    def cancel(self, job_id):
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        self.cancelled.append(job_id)


def _launcher(tmp_path, client) -> SlurmLauncher:
    store = JobStore(tmp_path / "jobs.sqlite3")
    return SlurmLauncher(
        store=store,
        store_dir=tmp_path,
        settings=SlurmSettings(poll_interval_s=0.001),
        client=client,
    )


def test_an_unreachable_controller_keeps_the_job_and_says_why(tmp_path):
    down = SlurmCommandError(
        "scontrol failed (exit 1): slurm_load_jobs error: Unable to contact slurm controller (connect failure)"
    )
    launcher = _launcher(tmp_path, _Client(_recorded("running"), down, _recorded("completed")))
    job = launcher.store.create(config={"preset": "smoke"}, backend="slurm")
    launcher.store.mark_running(job.id)
    launcher.store.set_external_id(job.id, "6")
    handle = launcher.reattach(launcher.store.get(job.id))
    assert handle is not None and handle.slurm_id == "6"
    first = launcher.observe(handle)
    assert (first.ended, first.scheduler_state, first.started_at is not None) == (
        False,
        "running",
        True,
    )
    handle.checked_at = float("-inf")
    seen = launcher.observe(handle)
    assert not seen.ended and seen.scheduler_state == "running"
    assert seen.scheduler_reason.startswith("cannot query Slurm: scontrol failed")
    assert "Unable to contact slurm controller" in seen.scheduler_reason
    handle.checked_at = float("-inf")
    write_outcome(job_files(tmp_path, job.id)["outcome"], Outcome(status="succeeded", version="v1"))
    last = launcher.observe(handle)
    assert last.ended and last.scheduler_state == "completed"
    assert last.outcome == Outcome(status="succeeded", version="v1")


def test_a_forgotten_job_ends_with_the_reason_and_cancel_is_retried(tmp_path):
    launcher = _launcher(tmp_path, _Client(None))
    job = launcher.store.create(config={}, backend="slurm")
    launcher.store.mark_running(job.id)
    launcher.store.set_external_id(job.id, "77")
    handle = launcher.reattach(launcher.store.get(job.id))
    seen = launcher.observe(handle)
    assert seen.ended and "Slurm no longer knows job 77" in seen.error
    launcher.client = _Client(SlurmCommandError("scancel failed"), "ok")
    launcher.cancel(handle)
    assert not handle.cancel_sent  # retried at the next poll
    launcher.cancel(handle)
    launcher.cancel(handle)  # once sent, not again
    assert handle.cancel_sent and launcher.client.cancelled == ["77"]
    assert launcher.reattach(launcher.store.create(config={}, backend="slurm")) is None


def test_progress_is_the_newest_complete_line(tmp_path):
    launcher = _launcher(tmp_path, _Client(_recorded("running")))
    job = launcher.store.create(config={}, backend="slurm")
    launcher.store.mark_running(job.id)
    launcher.store.set_external_id(job.id, "6")
    progress = job_files(tmp_path, job.id)["progress"]
    progress.parent.mkdir(parents=True)
    progress.write_text(json.dumps({"phase": "burnin", "iteration": 20}) + '\n{"phase": "burn')
    seen: Observation = launcher.observe(launcher.reattach(launcher.store.get(job.id)))
    assert seen.progress == {"phase": "burnin", "iteration": 20}


# -- the training side: outcome file and SIGTERM at a boundary -------------------------------


def test_outcome_files_round_trip_and_the_first_failure_stays(tmp_path):
    path = tmp_path / "jobs" / "x" / "outcome.json"
    reporter = OutcomeReporter(path=path)
    assert read_outcome(path) is None
    reporter.failed("process 1: collective failed")
    reporter.failed("process 0: echo")
    assert read_outcome(path) == Outcome(status="failed", error="process 1: collective failed")
    reporter.succeeded("v2")  # a success is written over anything
    assert read_outcome(path) == Outcome(status="succeeded", version="v2")
    path.write_text('{"status": "maybe"}')
    with pytest.raises(OutcomeError, match="maybe"):
        read_outcome(path)


def test_sigterm_stops_a_single_process_run_at_the_next_boundary():
    stop = threading.Event()
    check = BoundaryStop(stop)
    check(20)  # nothing asked: carries on
    stop.set()
    with pytest.raises(JobInterrupted, match="checkpoint at iteration 40 is kept"):
        check(40)


def test_slurm_tests_skip_only_without_packages_and_root_and_never_in_ci(monkeypatch, tmp_path):
    from tests.helpers import slurm_helpers

    monkeypatch.setattr(slurm_helpers.shutil, "which", lambda name: None)
    monkeypatch.setattr(slurm_helpers.os, "geteuid", lambda: 1000)
    monkeypatch.delenv(slurm_helpers.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"sudo scripts/slurm-local install"):
        slurm_helpers.start_cluster(tmp_path)
    monkeypatch.setenv(slurm_helpers.REQUIRE_ENV, "1")  # what .ci/run sets
    with pytest.raises(pytest.fail.Exception, match="SHARDLENS_REQUIRE_SLURM is set"):
        slurm_helpers.start_cluster(tmp_path)
    monkeypatch.setattr(slurm_helpers.os, "geteuid", lambda: 0)
    monkeypatch.setattr(
        slurm_helpers.shutil,
        "which",
        lambda name: "/usr/bin/apt-get" if name == "apt-get" else None,
    )
    assert slurm_helpers.unavailable_reason() is None  # root with apt-get: it installs them


class _Scripted:
    """A launcher whose observations are scripted (the last one repeats)."""

    name = "slurm"

    def __init__(self, *observations: Observation):
        self.observations = list(observations)
        self.cancels = 0

    def launch(self, job):
        return Handle(job_id=job.id)

    def observe(self, handle):
        return self.observations.pop(0) if len(self.observations) > 1 else self.observations[0]

    def cancel(self, handle):
        self.cancels += 1

    def reattach(self, job):
        return Handle(job_id=job.id)


def test_the_runner_records_the_schedulers_view_and_its_end(tmp_path):
    launcher = _Scripted(
        Observation(ended=False, scheduler_state="pending", scheduler_reason="Priority"),
        Observation(
            ended=False,
            scheduler_state="running",
            started_at=1234.0,
            progress={"phase": "burnin", "iteration": 20, "total": 60},
        ),
        Observation(
            ended=True,
            scheduler_state="cancelled",
            error="Slurm job 9 was cancelled in Slurm, not through the API (JobState=CANCELLED)",
            cancelled=True,
        ),
    )
    runner = JobRunner(store_dir=tmp_path, launchers={"slurm": launcher})
    job = runner.store.create(config={}, backend="slurm")
    runner.tick()  # launched
    runner.tick()
    seen = runner.store.get(job.id)
    assert (seen.effective_status, seen.scheduler_reason) == ("queued", "Priority")
    runner.tick()
    seen = runner.store.get(job.id)
    assert (seen.effective_status, seen.started_at, seen.iteration) == ("running", 1234.0, 20)
    runner.tick()
    done = runner.store.get(job.id)
    assert done.status == "cancelled" and "not through the API" in done.error
    assert done.scheduler_state == "cancelled" and launcher.cancels == 0


def test_a_reported_outcome_wins_and_unknown_backends_fail_clearly(tmp_path):
    launcher = _Scripted(
        Observation(
            ended=False,
            scheduler_state="running",
            outcome=Outcome(status="succeeded", version="v9"),
        ),
        Observation(ended=True, scheduler_state="completed"),
    )
    reloaded: list[str] = []
    runner = JobRunner(
        store_dir=tmp_path, launchers={"slurm": launcher}, on_success=reloaded.append
    )
    job = runner.store.create(config={}, backend="slurm")
    other = runner.store.create(config={}, backend="kubernetes")
    runner.max_concurrent = 2
    runner.tick()
    assert (
        "'kubernetes' job backend, which this server does not run"
        in runner.store.get(other.id).error
    )
    runner.tick()
    assert runner.store.get(job.id).status == "succeeded"  # from the outcome, before Slurm ends
    runner.tick()  # Slurm ended it: concluded, and the new version is loaded
    done = runner.store.get(job.id)
    assert (done.status, done.version, done.scheduler_state) == ("succeeded", "v9", "completed")
    wait_for(lambda: reloaded == ["v9"], what="the reload after success")
