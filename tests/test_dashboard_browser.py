"""The dashboard in real headless Debian Chromium (Playwright, system binary) against the real service with the
embedded simulated vehicle: live plots, interlock lights, a refusal with its reasons and a real mode sequence."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from telemetry.api.browser import chromium_path, launch
from telemetry.api.testing import ENGINEER_TOKEN, OPERATOR_TOKEN, spawned_service

pytestmark = pytest.mark.browser

if chromium_path() is None:  # pragma: no cover - reported as a skip, never as a pass
    pytest.skip("Debian chromium not installed (/usr/bin/chromium)", allow_module_level=True)



@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = launch(p)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def service_url() -> Iterator[str]:
    """`uniross run --sim` in its own process: the browser's Python driver and the in-process simulated vehicle
    would otherwise share one GIL, and a 70 ms gap in a 20 ms CAN message is a stale input that rightly means SAFE."""
    with spawned_service() as url:
        yield url


def mode(url: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{url}/api/v1/mode", timeout=5).json()
    return body


def audit(url: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = httpx.get(f"{url}/api/v1/mode/events?limit=5", timeout=5).json()["events"]
    return events


@pytest.fixture(scope="module")
def page(browser: Browser, service_url: str) -> Iterator[Page]:
    pg = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(service_url + "/")
    yield pg
    assert not errors, errors


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
    assert page.inner_text("#conn") == "stream live"


def test_mode_and_interlock_lights(page: Page, service_url: str) -> None:
    page.wait_for_function("document.querySelectorAll('#interlocks li').length > 5")
    assert page.inner_text("#mode-state") == "TRANSPORT", audit(service_url)
    assert page.locator("#interlocks li.ok").count() > 0
    # the sweeper-equipped demo truck: the snow attachment interlock is red, the sweeper head one green
    assert page.locator("#interlocks li[data-interlock='SNOW.snow_attachment_mounted']:not(.ok)").count() == 1
    assert page.locator("#interlocks li.ok[data-interlock='SWEEPER.sweeper_head_mounted']").count() == 1


def test_operator_refused_then_engineer_refusal_reasons_then_accepted(page: Page, service_url: str) -> None:
    page.fill("#token", OPERATOR_TOKEN)
    page.click("#btn-SWEEPER")
    page.wait_for_function("document.querySelector('#mode-request-result').textContent.includes('403')")

    page.fill("#token", ENGINEER_TOKEN)
    page.click("#btn-SNOW")  # refused: the demo truck has no snow attachment
    page.wait_for_selector("#mode-request-result.refused li[data-reason]")
    assert "refused" in page.inner_text("#mode-request-result")
    assert page.locator("#mode-request-result li[data-reason='snow_attachment_mounted']").count() == 1

    page.click("#btn-SWEEPER")
    page.wait_for_selector("#mode-request-result.ok")
    # the real sequence starts (nozzle, brushes, water, fan ramp: ~10 s of actuator travel in the simulator)
    page.wait_for_function("document.querySelector('#mode-state').dataset.state === 'TO_SWEEPER'", timeout=5000)
    status = mode(service_url)
    assert status["state"] in {"TO_SWEEPER", "SWEEPER"}, audit(service_url)
    accepted = next(e for e in audit(service_url) if e["kind"] == "accepted")
    assert accepted["source"] == "remote" and accepted["user"].startswith("engineer:")
