"""A screenshot of a people page in headless Chromium (docs/people.png).

    snakemake all --configfile config/photos.yaml
    python scripts/people_screenshot.py results/lfw-photos/test/…/people/index.html docs/people.png

Needs `pip install playwright` and a Chromium (Debian: `apt-get install chromium`); a
documentation tool, not a dependency of the product.
"""

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright


def main(html: str, out: str) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.goto(Path(html).resolve().as_uri())
        page.wait_for_timeout(1500)
        page.screenshot(path=out)
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:3])
