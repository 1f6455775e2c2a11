"""The Dockerfile, pyproject, README and CI script agree with each other and the tree."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n\s*", " ", text)
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            rows.append((op.upper(), rest.strip()))
    return rows


def test_dockerfile_copies_existing_paths():
    copies = [rest for op, rest in _dockerfile() if op == "COPY"]
    assert copies, "the Dockerfile copies nothing"
    for rest in copies:
        *sources, _dest = shlex.split(rest)
        for source in sources:
            assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"


def test_dockerfile_installs_every_package_and_runs_a_declared_script():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copied = {shlex.split(rest)[0] for op, rest in _dockerfile() if op == "COPY"}
    for package in ("app", "training", "storage", "common"):
        assert package in copied and (ROOT / package / "__init__.py").is_file()
    assert pyproject["tool"]["setuptools"]["packages"]["find"]["include"] == [
        "app*",
        "training*",
        "storage*",
        "common*",
    ]
    cmd = [rest for op, rest in _dockerfile() if op == "CMD"][-1]
    program = re.findall(r'"([^"]+)"', cmd)[0]
    scripts = pyproject["project"]["scripts"]
    assert program in scripts, f"CMD runs {program}, not a console script of pyproject.toml"
    module, _, func = scripts[program].partition(":")
    source = (ROOT / module.replace(".", "/")).with_suffix(".py").read_text()
    assert f"def {func}(" in source
    python = next(rest for op, rest in _dockerfile() if op == "FROM")
    minimum = pyproject["project"]["requires-python"].removeprefix(">=")
    assert python.startswith("python:") and python.split(":")[1].split("-")[0] >= minimum


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = [
        line.strip()
        for line in (ROOT / ".ci/run").read_text().splitlines()
        if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))
    ]
    # exactly the README's command, with the Slurm tests required (a skip fails the run)
    assert ci == ["export SHARDLENS_REQUIRE_SLURM=1", "scripts/test"]
    assert "scripts/test" in readme and "scripts/serve" in readme


def test_the_container_runs_unprivileged_with_a_liveness_check():
    rows = _dockerfile()
    users = [rest for op, rest in rows if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image runs as root"
    (healthcheck,) = [rest for op, rest in rows if op == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    cmd = [rest for op, rest in rows if op == "CMD"][-1]
    # binds first, trains in the background (tests/app/test_cli.py)
    assert "--train-if-empty" in cmd
    installs = [rest for op, rest in rows if op == "RUN" and "pip install" in rest]
    assert installs and all("-c requirements.lock" in rest for rest in installs)


def test_dockerignore_keeps_secrets_out_and_lets_every_copied_path_in():
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "the context starts from nothing and lets paths back in"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    for rest in [rest for op, rest in _dockerfile() if op == "COPY"]:
        *sources, _dest = shlex.split(rest)
        assert set(sources) <= allowed, f"COPY {sources}: not let in by .dockerignore"
    assert "**/.env" in lines and ".env" not in allowed


def test_readme_is_short_and_every_local_link_resolves():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150, "README.md: keep detail in docs/"
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_every_module_imports_where_fcntl_is_missing():
    """Locks go through `filelock` (storage.fsio, app.jobs.lock), so no module of ours needs
    POSIX `fcntl`: with it made unimportable, every module still imports."""
    script = """
import importlib, pkgutil, sys
sys.modules["fcntl"] = None  # what `import fcntl` meets on Windows
failed = []
for package in ("common", "storage", "app", "training"):
    root = importlib.import_module(package)
    for module in pkgutil.walk_packages(root.__path__, package + "."):
        if not module.name.endswith("__main__"):
            try:
                importlib.import_module(module.name)
            except Exception as exc:
                failed.append(f"{module.name}: {exc!r}")
print("\\n".join(failed))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "", f"modules that need fcntl:\n{run.stdout}"
