"""/docs (Swagger UI) and /redoc render fully in headless chromium with the network blocked:
their scripts and styles come from the fastapi-offline package, not a CDN."""

from __future__ import annotations

import pytest

from tests.helpers.app_helpers import publish, tiny_data
from tests.helpers.browser_helpers import Offline, launch, screenshot
from tests.helpers.live_server import live_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    publish(store, tiny_data(num_users=12, num_movies=10))
    with live_server(store, cache_dir=store.parent / "cache") as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")
    with sync_api.sync_playwright() as playwright:
        launched = launch(playwright)
        yield launched
        launched.close()


def operations(spec: dict) -> list[tuple[str, str]]:
    methods = {"get", "post", "put", "patch", "delete"}
    return [(m, p) for p, item in spec["paths"].items() for m in item if m in methods]


def test_swagger_ui_renders_every_operation_offline(server, browser, request):
    import httpx

    spec = httpx.get(f"{server.base_url}/openapi.json").json()
    offline = Offline(browser, width=1280, height=900)
    page = offline.page()
    page.goto(f"{server.base_url}/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    shown = page.eval_on_selector_all(
        ".opblock",
        "bs => bs.map(b => [b.querySelector('.opblock-summary-method').textContent.trim(),"
        " b.querySelector('.opblock-summary-path').dataset.path])",
    )
    assert sorted((m.lower(), p) for m, p in shown) == sorted(operations(spec))
    assert page.inner_text(".info .title").startswith("shardlens")
    stylesheet = page.evaluate(
        "getComputedStyle(document.querySelector('.swagger-ui .opblock')).borderStyle"
    )
    assert stylesheet == "solid", "swagger-ui.css did not apply"
    assert offline.left_host == [], f"requests left the host: {offline.left_host}"
    assert any("/static-offline-docs/swagger-ui-bundle.js" in u for u in offline.requested)
    screenshot(request, page, "docs-swagger")
    offline.context.close()


def test_redoc_renders_every_operation_offline(server, browser, request):
    import httpx

    spec = httpx.get(f"{server.base_url}/openapi.json").json()
    offline = Offline(browser, width=1280, height=900)
    page = offline.page()
    page.goto(f"{server.base_url}/redoc")
    page.wait_for_selector("[id^='operation/']", timeout=30_000)
    ids = page.eval_on_selector_all("[id^='operation/']", "es => es.map(e => e.id)")
    expected = {spec["paths"][path][method]["operationId"] for method, path in operations(spec)}
    assert {i.removeprefix("operation/") for i in ids} >= expected
    assert "shardlens" in page.inner_text("h1")
    assert offline.left_host == [], f"requests left the host: {offline.left_host}"
    assert any("/static-offline-docs/redoc.standalone.js" in u for u in offline.requested)
    screenshot(request, page, "docs-redoc")
    offline.context.close()
