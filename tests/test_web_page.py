"""The web page in a real headless browser (Debian's chromium, driven by Playwright)."""

from __future__ import annotations

import shutil

import httpx
import pytest

from storage.posterior import publish_posterior
from tests.app_helpers import random_samples, tiny_data
from tests.live_server import live_server

pytestmark = pytest.mark.slow

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


def real_png(title: str) -> bytes:
    import io

    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    fig.add_subplot().plot([0, 1, 2], [1, 0, 2])
    fig.suptitle(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


@pytest.fixture
def browser():
    if CHROMIUM is None:
        pytest.fail(
            "chromium is not installed: scripts/test installs it (apt-get install chromium)"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


def test_page_shows_the_api_numbers(tmp_path, browser):
    data = tiny_data(num_users=25, num_movies=20)
    store = tmp_path / "store"
    version = publish_posterior(
        store,
        samples=random_samples(data, seed=3),
        data=data,
        config={"preset": "test"},
        diagnostics={"mean_acceptance": 0.78, "final_step_size": 0.05},
        files={
            "plots/trace.png": real_png("trace"),
            "evaluation/reliability.png": real_png("reliability"),
        },
    )
    heaviest = str(data.user_ids[data.watch_counts.argmax()])
    with live_server(store, cache_dir=tmp_path / "cache") as server:
        api = httpx.get(f"{server.base_url}/recommend/{heaviest}", params={"k": 10}).json()
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        page.goto(server.base_url + "/")
        page.wait_for_selector(f"#featured button[data-user-id='{heaviest}']")
        assert version in page.inner_text("#model-line")
        # The model's diagnostics and its stored plots are shown.
        assert "mean_acceptance" in page.inner_text("#diagnostics")
        page.wait_for_function(
            "[...document.querySelectorAll('#plots img')].every(i => i.complete)"
        )
        plots = page.eval_on_selector_all(
            "#plots img", "imgs => imgs.map(i => [i.alt, i.naturalWidth])"
        )
        assert sorted(alt for alt, _ in plots) == ["evaluation/reliability.png", "plots/trace.png"]
        assert all(width > 0 for _, width in plots), "a plot image did not load"

        page.click(f"#featured button[data-user-id='{heaviest}']")
        page.wait_for_selector("#picks-chart rect.bar")
        bars = page.eval_on_selector_all(
            "#picks-chart rect.bar",
            "rs => rs.map(r => [r.dataset.label, Number(r.dataset.count), r.getBBox().height])",
        )
        assert [(label, count) for label, count, _ in bars] == [
            (r["title"], r["count"]) for r in api["recommendations"]
        ]
        heights = [h for _, _, h in bars]
        assert heights == sorted(heights, reverse=True) and heights[0] > 0
        genres = page.eval_on_selector_all(
            "#genres-chart rect.bar",
            "rs => rs.map(r => [r.dataset.label, Number(r.dataset.count)])",
        )
        assert genres == [[g["genre"], g["count"]] for g in api["genres"]]
        uncertainty = page.inner_text("#uncertainty")
        assert f"{api['uncertainty']['entropy_bits']:.2f} bits" in uncertainty
        assert str(api["uncertainty"]["distinct_movies"]) in uncertainty
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        assert (tmp_path / "page.png").stat().st_size > 10_000

        # A user who does not exist gets the API's message, not a broken page.
        page.fill("#user-id", "987654321")
        page.click("#user-form button[type=submit]")
        page.wait_for_selector("#error:not([hidden])")
        assert "404" in page.inner_text("#error")
