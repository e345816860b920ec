"""Screenshots of a Snakemake report in headless Chromium (docs/report_*.png).

    snakemake report --report report.zip && unzip report.zip -d /tmp/rep
    python scripts/report_screenshots.py /tmp/rep/report/report.html DATASET EXPERIMENT docs/

Needs `pip install playwright` and a Chromium (Debian: `apt-get install chromium`); it is a
documentation tool, not a dependency of the product.
"""

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright


def main(html: str, dataset: str, experiment: str, out: str) -> None:
    out_dir = Path(out)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(Path(html).resolve().as_uri())
        page.wait_for_timeout(2000)
        page.screenshot(path=str(out_dir / "report_landing.png"))
        page.get_by_text(dataset).first.click()       # the dataset's category
        page.wait_for_timeout(1000)
        page.get_by_text(experiment).first.click()    # one experiment's page
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out_dir / "report_method.png"))
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:5])
