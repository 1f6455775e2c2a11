"""The web page in a real headless browser (Debian's chromium, driven by Playwright)."""

from __future__ import annotations

import shutil
import time

import httpx
import pytest

from storage.posterior import publish_posterior
from tests.app_helpers import publish_checked, random_samples, tiny_data
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
        # Published without a convergence record: the page says so, visibly.
        page.wait_for_selector("#convergence-warning:not([hidden])")
        assert "convergence not recorded" in page.inner_text("#convergence-warning")
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


def test_page_warns_about_an_unconverged_version(tmp_path, browser):
    data = tiny_data(num_users=25, num_movies=20)
    store = tmp_path / "store"
    converged = publish_checked(store, data, converged=True, seed=1)
    user = int(data.user_ids[0])
    env = {"SHARDLENS_SERVE_POLICY": "latest"}
    with live_server(store, cache_dir=tmp_path / "cache", env=env) as server:
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        page.goto(server.base_url + "/")
        page.wait_for_selector("#featured button")
        assert converged in page.inner_text("#model-line")
        assert page.is_hidden("#convergence-warning")  # a converged version: no warning
        assert "converged" in page.inner_text("#diagnostics")

        unconverged = publish_checked(store, data, converged=False, seed=2)
        deadline = time.monotonic() + 30
        while httpx.get(f"{server.base_url}/readyz").json()["model_version"] != unconverged:
            assert time.monotonic() < deadline, "the server did not swap in the new version"
            time.sleep(0.1)
        page.reload()
        page.wait_for_selector("#convergence-warning:not([hidden])")
        warning = page.inner_text("#convergence-warning")
        assert warning.startswith(f"Warning: unconverged posterior: version {unconverged}")
        assert "log-likelihood split R-hat 1.21 > 1.05" in warning
        box = page.eval_on_selector(
            "#convergence-warning",
            "e => { const r = e.getBoundingClientRect(); return [r.top, r.height]; }",
        )
        assert box[1] > 0 and box[0] < 400  # in the header, above the picker
        page.fill("#user-id", str(user))
        page.click("#user-form button[type=submit]")
        page.wait_for_selector("#picks-chart rect.bar")
        assert page.is_visible("#convergence-warning")  # the answer carried it too
