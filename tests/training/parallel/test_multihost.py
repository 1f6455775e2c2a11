"""Two real processes on loopback (4 fake CPU devices each, gloo) against one 8-device process.

- the sharded log density and gradient equal the single-process values;
- killing one process mid-run fails the other within a bounded time, publishing nothing;
- resuming the killed run from its per-process checkpoint parts publishes samples that are
  bit-identical to an uninterrupted single-process run (`--reduction ordered`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import multihost_worker as worker
from training.config import preset
from training.data import load_source
from training.run.loop import train

# Generous limits: on a loaded machine (CI, a training beside it) starting, compiling and
# running two processes takes minutes; the checks below do not depend on speed.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

ROOT = Path(__file__).resolve().parents[3]
PROCESSES, LOCAL_DEVICES = 2, 4
HEARTBEAT_S = 5  # the killed run's; the others get more, so load never fails them
WORK_S = 600  # the most a run may take to start, reach a point or finish, under load
FAIL_WITHIN_S = 60  # from the kill to the survivor's exit: heartbeat timeout + slack
CONFIG = preset("smoke").replace(devices=8, reduction="ordered")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", autouse=True)
def compile_cache(tmp_path_factory):
    """One persistent compilation cache for every process of this module: the resumed run
    loads the killed run's programs."""
    global _CACHE
    _CACHE = tmp_path_factory.mktemp("jax-cache")
    yield _CACHE
    _CACHE = None


_CACHE: Path | None = None


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # conftest's 8 devices
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONUNBUFFERED"] = "1"
    if _CACHE is not None:
        env["JAX_COMPILATION_CACHE_DIR"] = str(_CACHE)
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    return env


def _start(argv_for, logs: Path) -> list[subprocess.Popen]:
    logs.mkdir(parents=True, exist_ok=True)
    procs = []
    for pid in range(PROCESSES):
        with (logs / f"p{pid}.log").open("w") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, *argv_for(pid)],
                    cwd=ROOT,
                    env=_env(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    return procs


def _wait(procs: list[subprocess.Popen], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    try:
        return [p.wait(timeout=max(0.1, deadline - time.monotonic())) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _train_argv(store: Path, port: int, progress: Path, *extra: str, heartbeat_s: int = 5):
    def argv(pid: int) -> list[str]:
        return [
            "-m", "training", "train", "--preset", "smoke", "--store", str(store),
            "--reduction", "ordered", "--coordinator-address", f"127.0.0.1:{port}",
            "--num-processes", str(PROCESSES), "--process-id", str(pid),
            "--local-devices", str(LOCAL_DEVICES), "--heartbeat-timeout", str(heartbeat_s),
            "--init-timeout", "300", "--shutdown-timeout", "300",
            "--progress-jsonl", str(progress), *extra,
        ]  # fmt: skip

    return argv


def _log(logs: Path, pid: int) -> str:
    return (logs / f"p{pid}.log").read_text(errors="replace")


@pytest.fixture(scope="module")
def reference():
    """The single-process run on 8 devices with the same seed."""
    return train(CONFIG, load_source(CONFIG.data))


def test_log_density_and_gradient_equal_single_process(tmp_path):
    out = tmp_path / "density.npz"
    port = _free_port()
    procs = _start(
        lambda pid: [
            "-m",
            "tests.helpers.multihost_worker",
            f"127.0.0.1:{port}",
            str(PROCESSES),
            str(pid),
            str(LOCAL_DEVICES),
            str(out),
        ],
        tmp_path / "logs",
    )
    codes = _wait(procs, timeout=WORK_S)
    assert codes == [0, 0], _log(tmp_path / "logs", 0)[-3000:]
    got = np.load(out)
    data = load_source(worker.CONFIG.data)
    for reduction in worker.REDUCTIONS:
        value, grads = worker.value_and_grad(worker.CONFIG.replace(reduction=reduction), data)
        assert np.all(np.isfinite(value)) and value.shape == (CONFIG.num_chains,)
        if reduction == "ordered":  # the same additions in the same order: bit-identical
            np.testing.assert_array_equal(got[f"{reduction}/value"], value)
            for i, g in enumerate(grads):
                np.testing.assert_array_equal(got[f"{reduction}/grad{i}"], g, err_msg=str(i))
        else:  # psum: gloo adds the 8 devices' terms in another order than XLA in-process
            np.testing.assert_allclose(got[f"{reduction}/value"], value, rtol=1e-6)
            for i, g in enumerate(grads):
                np.testing.assert_allclose(
                    got[f"{reduction}/grad{i}"], g, rtol=1e-5, atol=1e-5, err_msg=str(i)
                )
        assert np.all(grads[0][:, data.num_users :] == 0.0)  # padded users: no gradient


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """Start the smoke run on two processes, SIGKILL process 1 once process 0 reports
    iteration 40 (process 1 then holds its part of the checkpoint at iteration 20: it took
    part in the segment after it); returns (store, logs, exit codes, seconds from the kill
    to the last exit)."""
    tmp = tmp_path_factory.mktemp("killed")
    store, logs, progress = tmp / "store", tmp / "logs", tmp / "progress.jsonl"
    procs = _start(_train_argv(store, _free_port(), progress, heartbeat_s=HEARTBEAT_S), logs)
    deadline = time.monotonic() + WORK_S
    try:
        while time.monotonic() < deadline:
            lines = progress.read_text().splitlines() if progress.exists() else []
            if any(json.loads(line)["iteration"] >= 40 for line in lines[1:]):
                break
            assert procs[0].poll() is None, _log(logs, 0)[-3000:]
            time.sleep(0.05)
        else:
            pytest.fail("the run never reached iteration 40:\n" + _log(logs, 0)[-3000:])
        procs[1].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        codes = _wait(procs, timeout=FAIL_WITHIN_S)
        return store, logs, codes, time.monotonic() - killed_at
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def test_killing_one_process_fails_the_other_cleanly(killed_run):
    from storage.posterior import latest_version, list_versions

    store, logs, codes, seconds = killed_run
    assert codes[1] == -signal.SIGKILL
    assert codes[0] != 0, _log(logs, 0)[-3000:]  # it did not finish on its own
    assert seconds < FAIL_WITHIN_S, seconds
    print(f"survivor exited {codes[0]} {seconds:.1f} s after the kill")
    survivor = _log(logs, 0)
    assert "published version" not in survivor
    # JAX's runtime ends it ("... detected fatal errors ...", exit 134), or a collective
    # fails first and the CLI reports it: either way a message, not a hang.
    assert "detected fatal errors" in survivor or "error:" in survivor, survivor[-3000:]
    assert latest_version(store) is None and list_versions(store) == []
    parts = sorted(p.name for p in (store / "checkpoints").glob("*/state-*.npz"))
    assert any(".p0000of0002" in p for p in parts) and any(".p0001of0002" in p for p in parts)


def test_resumed_run_publishes_the_single_process_samples(killed_run, reference):
    from storage.posterior import open_posterior

    store, _, _, _ = killed_run
    logs = store.parent / "resume-logs"
    procs = _start(
        _train_argv(
            store, _free_port(), store.parent / "resume.jsonl", "--resume", "--json", heartbeat_s=20
        ),
        logs,
    )
    codes = _wait(procs, timeout=WORK_S)
    assert codes == [0, 0], _log(logs, 0)[-3000:] + _log(logs, 1)[-3000:]
    summary = json.loads(_log(logs, 0).strip().splitlines()[-1])
    assert f"process 0 published version {summary['version']}" in _log(logs, 1)
    posterior = open_posterior(store, summary["version"])
    try:
        samples = posterior.samples()
        for name, value in reference.samples.items():
            np.testing.assert_array_equal(samples[name], value, err_msg=name)  # bit-exact
        for name, value in reference.traces.items():
            np.testing.assert_array_equal(posterior.traces[name], value, err_msg=name)
        assert posterior.manifest["config"]["fingerprint"] == reference.fingerprint
    finally:
        posterior.close()
    assert not list((store / "checkpoints").iterdir())  # removed once published
