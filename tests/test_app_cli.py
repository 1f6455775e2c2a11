"""`python -m app`: options reach uvicorn; --train-if-empty trains first, only when empty."""

from __future__ import annotations

import signal

import pytest

import app.__main__ as cli
from tests.app_helpers import publish, tiny_data


@pytest.fixture
def calls(monkeypatch):
    seen: list[tuple[str, object]] = []
    monkeypatch.setenv("SHARDLENS_STORE_DIR", "unused")  # main() sets it; undone after the test
    monkeypatch.setattr(cli, "train_into", lambda store: seen.append(("train", store)) or 0)
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: seen.append(("serve", (target, kw))))
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield seen
    for signum, handler in handlers.items():  # main() installs its own before serving
        signal.signal(signum, handler)


def test_train_if_empty_trains_then_serves(tmp_path, calls):
    argv = ["--store", str(tmp_path), "--port", "9123", "--workers", "2", "--train-if-empty"]
    assert cli.main(argv) == 0
    assert [name for name, _ in calls] == ["train", "serve"]
    target, options = calls[1][1]
    assert target == "app.main:create_app" and options["factory"] is True
    assert (options["port"], options["workers"]) == (9123, 2)


def test_no_training_when_a_version_exists(tmp_path, calls):
    publish(tmp_path, tiny_data(num_users=5, num_movies=4))
    assert cli.main(["--store", str(tmp_path), "--train-if-empty"]) == 0
    assert [name for name, _ in calls] == ["serve"]


def test_failed_training_does_not_serve(tmp_path, calls, monkeypatch):
    monkeypatch.setattr(cli, "train_into", lambda store: 3)
    assert cli.main(["--store", str(tmp_path), "--train-if-empty"]) == 3
    assert calls == []
