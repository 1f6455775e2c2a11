"""Playwright on Debian's chromium for the page and docs tests: an offline browser context
(every request to another host is aborted and recorded) and a folder for screenshots."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Screenshots land here (git-ignored); SHARDLENS_TEST_ARTIFACTS moves them.
ARTIFACTS = Path(
    os.environ.get(
        "SHARDLENS_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"
    )
)


class Offline:
    """A browser context where only 127.0.0.1 answers; `left_host` lists every other URL
    the page tried (each one aborted)."""

    def __init__(self, browser, *, width: int, height: int):
        self.left_host: list[str] = []
        self.requested: list[str] = []
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.context.route("**/*", self._route)

    def _route(self, route) -> None:
        url = route.request.url
        self.requested.append(url)
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob") or parts.hostname == "127.0.0.1":
            route.continue_()
        else:
            self.left_host.append(url)
            route.abort("internetdisconnected")

    def page(self):
        return self.context.new_page()


def launch(playwright):
    if CHROMIUM is None:
        pytest.fail(
            "chromium is not installed: scripts/test installs it (apt-get install chromium)"
        )
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)


def screenshot(request, page, name: str) -> Path:
    """Save a full-page screenshot under ARTIFACTS and print where it went."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    with request.getfixturevalue("capsys").disabled():  # shown even under output capture
        print(f"\nscreenshot: {path}")
    return path


def real_png(title: str) -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    fig.add_subplot().plot([0, 1, 2], [1, 0, 2])
    fig.suptitle(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
