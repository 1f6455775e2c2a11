"""`python -m storage`: list, show, verify and gc, with exit codes and --json."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from storage.cli import EXIT_CORRUPT, EXIT_MISSING, EXIT_OK, main
from tests.helpers.storage_helpers import ROOT, publish_small, subprocess_env


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


@pytest.fixture
def store(tmp_path):
    return tmp_path / "store"


def test_list_and_show(store):
    assert run("list", "--store", str(store)) == (EXIT_OK, f"no versions in {store}\n")
    first, second = publish_small(store, seed=1), publish_small(store, seed=2)
    code, text = run("list", "--store", str(store))
    assert code == EXIT_OK
    lines = text.splitlines()
    assert second in lines[1] and "latest" in lines[1] and first in lines[2]
    code, text = run("list", "--store", str(store), "--json")
    assert code == EXIT_OK
    listed = json.loads(text)["versions"]
    assert [v["version"] for v in listed] == [first, second]
    assert listed[1]["is_latest"] and listed[0]["num_users"] == 30
    code, text = run("show", "latest", "--store", str(store))
    assert code == EXIT_OK and second in text and "users.npy" in text and "(latest)" in text
    code, text = run("show", first, "--store", str(store), "--json")
    manifest = json.loads(text)
    assert manifest["version"] == first and manifest["diagnostics"] == {"seed": 1}


def test_store_from_environment(store, monkeypatch):
    version = publish_small(store)
    monkeypatch.setenv("SHARDLENS_STORE_DIR", str(store))
    code, text = run("list", "--json")
    assert code == EXIT_OK
    assert [v["version"] for v in json.loads(text)["versions"]] == [version]


def test_verify_names_the_bad_file(store, capsys):
    good, bad = publish_small(store, seed=1), publish_small(store, seed=2)
    assert run("verify", "--store", str(store))[0] == EXIT_OK
    path = store / "versions" / bad / "movie_bias.npy"
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1
    path.write_bytes(bytes(raw))
    code, text = run("verify", "--store", str(store))
    assert code == EXIT_CORRUPT
    assert f"{good}  ok" in text and f"{bad}  BAD movie_bias.npy" in text
    code, text = run("verify", good, "--store", str(store), "--json")
    assert code == EXIT_OK and json.loads(text)["ok"]
    code, text = run("verify", "latest", "--store", str(store), "--json")
    report = json.loads(text)
    assert code == EXIT_CORRUPT and report["versions"][0]["file"] == "movie_bias.npy"


def test_missing_versions_exit_3(store, capsys):
    assert run("verify", "--store", str(store))[0] == EXIT_MISSING
    assert run("show", "latest", "--store", str(store))[0] == EXIT_MISSING
    assert "python -m training train" in capsys.readouterr().err
    publish_small(store)
    assert run("show", "20200101T000000.000000Z-0000", "--store", str(store))[0] == EXIT_MISSING


def test_gc(store):
    versions = [publish_small(store, seed=s) for s in range(3)]
    code, text = run("gc", "--keep", "1", "--store", str(store), "--json")
    report = json.loads(text)
    assert code == EXIT_OK and sorted(report["removed"]) == versions[:2]
    assert report["kept"] == versions[2:]
    code, text = run("gc", "--store", str(store))
    assert code == EXIT_OK and text.startswith("kept 1 version(s), removed 0")


def test_usage_errors_exit_2(store):
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


@pytest.mark.slow
def test_python_dash_m_storage(store):
    version = publish_small(store)
    done = subprocess.run(
        [sys.executable, "-m", "storage", "verify", "--store", str(store), "--json"],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["versions"][0]["version"] == version
