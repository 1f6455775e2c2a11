"""Save a screenshot of the web page for one user: docs/page.png in the README.

    .venv/bin/python scripts/page_screenshot.py http://127.0.0.1:8000 USER_ID [OUT.png]

Needs a running server, the dev extra (playwright) and Debian's chromium (headless).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    base, user = argv[0], argv[1]
    out = Path(argv[2]) if len(argv) == 3 else Path(__file__).parents[1] / "docs" / "page.png"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("chromium is missing: apt-get install chromium", file=sys.stderr)
        return 2
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1260})
        page.goto(base + "/")
        page.fill("#user-id", user)
        page.click("#user-form button[type=submit]")
        page.wait_for_selector("#picks-chart rect.bar")
        page.wait_for_selector("#genres-chart rect.bar")
        page.screenshot(path=str(out))  # the first screen: charts and table
        browser.close()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
