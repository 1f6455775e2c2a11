"""docs/configuration.md agrees with the settings classes and with the variables the code reads."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "configuration.md"


def _generator():
    spec = importlib.util.spec_from_file_location(
        "config_docs", ROOT / "scripts" / "config_docs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_table_matches_the_settings_classes():
    generator = _generator()
    assert generator.updated(PAGE.read_text()) == PAGE.read_text(), (
        "docs/configuration.md is out of date: run .venv/bin/python scripts/config_docs.py"
    )
    assert generator.main(["--check"]) == 0


def test_every_server_setting_has_a_row_with_its_default():
    page = PAGE.read_text()
    for name, field in Settings.model_fields.items():
        env = f"SHARDLENS_{name.upper()}"
        assert f"`{env}" in page, f"{env} is missing from docs/configuration.md"
        if isinstance(field.default, int | float | str) and not isinstance(field.default, bool):
            assert re.search(rf"\| `{env}` \| `{re.escape(str(field.default))}` \|", page), env


def test_a_changed_default_makes_the_check_fail(monkeypatch):
    generator = _generator()
    page = PAGE.read_text()
    monkeypatch.setattr(Settings.model_fields["port"], "default", 9999)
    assert generator.updated(page) != page


def _training_table_variables() -> set[str]:
    text = PAGE.read_text().split("**Training and storage commands**", 1)[1]
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    return {v for row in rows for v in re.findall(r"`(SHARDLENS_[A-Z_]+)`", row.split(" | ")[0])}


def test_the_training_table_lists_exactly_the_variables_the_code_reads():
    from storage.store_settings import StoreSettings
    from training.run_settings import TrainingEnvironment

    read: set[str] = set()
    for package in ("training", "storage", "common"):
        for path in (ROOT / package).rglob("*.py"):
            read.update(re.findall(r"\"(SHARDLENS_[A-Z_]+)\"", path.read_text()))
    for settings in (TrainingEnvironment, StoreSettings):  # pydantic-settings fields
        read.update(f"SHARDLENS_{name.upper()}" for name in settings.model_fields)
    assert _training_table_variables() == read


def test_no_other_page_keeps_its_own_settings_table():
    pages = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    for page in pages:
        if page == PAGE:
            continue
        rows = re.findall(r"(?m)^\| `SHARDLENS_[A-Z_]+", page.read_text())
        assert not rows, f"{page.name} has a settings table: link docs/configuration.md instead"
