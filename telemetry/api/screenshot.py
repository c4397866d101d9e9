"""Screenshot of the dashboard with the system Chromium.

`python -m telemetry.api.screenshot --url http://127.0.0.1:8000 --out dashboard.png`
(`--demo` serves the in-memory demo service itself instead of using --url).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator

from playwright.sync_api import sync_playwright

from telemetry.api.browser import launch


@contextlib.contextmanager
def _target(url: str | None, demo: bool) -> Iterator[str]:
    if not demo:
        assert url is not None
        yield url.rstrip("/")
        return
    from telemetry.api.testing import running_api

    with running_api(warmup_s=0.5) as api:
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
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", default="dashboard.png")
    parser.add_argument("--demo", action="store_true", help="serve the in-memory demo service")
    parser.add_argument("--settle", type=float, default=4.0, help="seconds of data before the shot")
    args = parser.parse_args(argv)
    with _target(args.url, args.demo) as url:
        take(url, args.out, settle_s=args.settle)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
