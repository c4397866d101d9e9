"""The dashboard in real headless Debian Chromium (Playwright, system binary) against the real service with the
embedded simulated vehicle: live plots, the clock, interlock lights by target, a refusal with its reasons in the
audit trail, and a real SWEEPER sequence to its end with the fan spin-up on the plot."""

from __future__ import annotations

import re
import time
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


def test_footer_clock_shows_the_service_time_as_local_time_of_day(page: Page) -> None:
    page.wait_for_function("/^\\d\\d:\\d\\d:\\d\\d\\.\\d$/.test(document.querySelector('#clock').textContent)")
    clock = page.inner_text("#clock")
    now = time.localtime()  # the service runs on this machine with a wall clock
    seconds = sum(int(x) * f for x, f in zip(re.split(r"[:.]", clock)[:3], (3600, 60, 1), strict=True))
    assert abs((seconds - (now.tm_hour * 3600 + now.tm_min * 60 + now.tm_sec) + 43200) % 86400 - 43200) < 5, clock


def test_mode_and_interlock_lights_grouped_by_target(page: Page, service_url: str) -> None:
    page.wait_for_function("document.querySelectorAll('#interlocks [data-interlock]').length > 5")
    assert page.inner_text("#mode-state") == "TRANSPORT", audit(service_url)
    status = mode(service_url)
    # one light per (target, interlock), one row per interlock: a shared interlock is listed once
    names = {i["name"] for i in status["interlocks"] if not i["name"].startswith("SAFE.")}
    lights = page.locator("#interlocks [data-interlock]")
    assert sorted(lights.evaluate_all("els => els.map(e => e.dataset.interlock)")) == sorted(names)
    rows = page.locator("#interlocks tbody tr")
    assert rows.count() == len({n.split(".", 1)[1] for n in names}) < len(names)
    shared = page.locator("#interlocks tr[data-name='engine_running'] [data-interlock]")
    assert shared.evaluate_all("els => els.map(e => e.dataset.interlock)") == [
        "SWEEPER.engine_running", "SNOW.engine_running"]
    # the sweeper-equipped demo truck: the snow attachment interlock is red, the sweeper head one green
    assert page.locator("#interlocks .lamp.bad[data-interlock='SNOW.snow_attachment_mounted']").count() == 1
    assert page.locator("#interlocks .lamp.ok[data-interlock='SWEEPER.sweeper_head_mounted']").count() == 1
    assert "ready" in page.inner_text("#interlocks th[data-target='SWEEPER']")
    assert "1 blocking" in page.inner_text("#interlocks th[data-target='SNOW']")
    assert page.inner_text("#safe-causes") == "none"


def test_operator_refused_then_engineer_refusal_reasons_then_accepted(page: Page, service_url: str) -> None:
    page.fill("#token", OPERATOR_TOKEN)
    page.click("#btn-SWEEPER")
    page.wait_for_function("document.querySelector('#mode-request-result').textContent.includes('403')")

    page.fill("#token", ENGINEER_TOKEN)
    page.click("#btn-SNOW")  # refused: the demo truck has no snow attachment
    page.wait_for_selector("#mode-request-result.refused li[data-reason]")
    assert "refused" in page.inner_text("#mode-request-result")
    assert page.locator("#mode-request-result li[data-reason='snow_attachment_mounted']").count() == 1
    # the audit trail: the requested target, and the state the truck stayed in
    refused = page.wait_for_selector("#mode-events li[data-kind='refused']")
    assert refused is not None and "SNOW" in refused.inner_text() and "→ TRANSPORT" in refused.inner_text()

    page.click("#btn-SWEEPER")
    page.wait_for_selector("#mode-request-result.ok")
    accepted = next(e for e in audit(service_url) if e["kind"] == "accepted")
    assert accepted["source"] == "remote" and accepted["user"].startswith("engineer:")
    assert (accepted["state"], accepted["target"]) == ("TO_SWEEPER", "SWEEPER")
    # the real sequence (nozzle, brushes, water, fan ramp: ~10 s of actuator travel in the simulator) to its end
    page.wait_for_function("document.querySelector('#mode-state').dataset.state === 'SWEEPER'", timeout=25000)
    assert mode(service_url)["state"] == "SWEEPER", audit(service_url)
    # and the fan spin-up on the plot: serial and CAN fan speed both past 2000 rpm
    page.wait_for_function(
        "(() => { const v = JSON.parse(document.querySelector('#plot-fan').dataset.latest || '{}');"
        " return v['serial.fan_speed'] > 2000 && v['SSC_Suction.SuctionFanSpeed'] > 2000; })()",
        timeout=10000,
    )
