"""The dashboard in real headless Debian Chromium (Playwright, system binary): live plots and a mode change."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, sync_playwright

from telemetry.api.browser import chromium_path, launch
from telemetry.api.testing import ENGINEER_TOKEN, OPERATOR_TOKEN, RunningApi, running_api

pytestmark = pytest.mark.browser

if chromium_path() is None:  # pragma: no cover - reported as a skip, never as a pass
    pytest.skip("Debian chromium not installed (/usr/bin/chromium)", allow_module_level=True)



@pytest.fixture(scope="module")
def api() -> Iterator[RunningApi]:
    with running_api() as running:
        yield running


@pytest.fixture(scope="module")
def page(api: RunningApi) -> Iterator[Page]:
    with sync_playwright() as p:
        browser = launch(p)
        try:
            pg = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            pg.on("pageerror", lambda exc: errors.append(str(exc)))
            pg.goto(api.base_url + "/")
            yield pg
            assert not errors, errors
        finally:
            browser.close()


def updates(page: Page, plot: str) -> int:
    return int(page.get_attribute(f"#{plot}", "data-updates") or 0)


def test_plots_update_live(page: Page) -> None:
    for plot in ("plot-suction", "plot-fan", "plot-speed"):
        page.wait_for_function(
            f"Number(document.querySelector('#{plot}').dataset.updates) > 3", timeout=10000
        )
    before = updates(page, "plot-fan")
    page.wait_for_timeout(1000)
    assert updates(page, "plot-fan") >= before + 5  # streaming at 20 Hz
    page.wait_for_function("document.querySelector('#bus-health').textContent.includes('frames/s')")
    assert "alive" in page.inner_text("#bus-health")


def test_mode_and_interlock_lights(page: Page) -> None:
    page.wait_for_function("document.querySelectorAll('#interlocks li').length > 5")
    assert page.inner_text("#mode-state") == "TRANSPORT"
    assert page.locator("#interlocks li.ok").count() > 0
    assert page.locator("#interlocks li[data-interlock='snow_attachment_mounted']:not(.ok)").count() == 1


def test_operator_refused_then_engineer_refusal_reasons_then_accepted(page: Page, api: RunningApi) -> None:
    page.fill("#token", OPERATOR_TOKEN)
    page.click("#btn-SWEEPER")
    page.wait_for_function("document.querySelector('#mode-request-result').textContent.includes('403')")

    page.fill("#token", ENGINEER_TOKEN)
    page.click("#btn-SNOW")  # refused: the demo truck has no snow attachment
    page.wait_for_selector("#mode-request-result.refused li[data-reason]")
    assert "refused" in page.inner_text("#mode-request-result")

    page.click("#btn-SWEEPER")
    page.wait_for_selector("#mode-request-result.ok")
    page.wait_for_function(
        "document.querySelector('#mode-state').dataset.state !== 'TRANSPORT'", timeout=5000
    )
    assert page.inner_text("#mode-state") in {"TO_SWEEPER", "SWEEPER", "SAFE"}
    assert api.service.mode_status().state != "TRANSPORT"
