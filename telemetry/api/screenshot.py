"""Screenshot of the dashboard with the system Chromium.

`python -m telemetry.api.screenshot --out dashboard.png` starts the real service with the embedded simulated vehicle
itself (`telemetry.api.testing.running_api`); `--url http://127.0.0.1:8000` shoots an already running one instead.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator

from playwright.sync_api import sync_playwright

from telemetry.api.browser import launch


@contextlib.contextmanager
def _target(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url.rstrip("/")
        return
    from telemetry.api.testing import running_api

    with running_api() as api:
        yield api.base_url


def take(url: str, out: str, width: int = 1440, height: int = 1100, settle_s: float = 4.0) -> None:
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url + "/")
            page.wait_for_function("Number(document.querySelector('#plot-fan').dataset.updates) > 5", timeout=15000)
            time.sleep(settle_s)
            page.screenshot(path=out, full_page=True)
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m telemetry.api.screenshot", description=__doc__)
    parser.add_argument("--url", default=None, help="a running service (default: start the real one with the sim)")
    parser.add_argument("--out", default="dashboard.png")
    parser.add_argument("--settle", type=float, default=4.0, help="seconds of data before the shot")
    args = parser.parse_args(argv)
    with _target(args.url) as url:
        take(url, args.out, settle_s=args.settle)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
