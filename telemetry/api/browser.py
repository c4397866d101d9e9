"""Launch the system's Debian Chromium through Playwright (never a downloaded browser)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """Path of the Debian chromium binary, or None when it is not installed."""
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


def launch(playwright: Any) -> Any:
    """`playwright.chromium.launch` with the system binary and the fixed flags."""
    path = chromium_path()
    if path is None:
        raise RuntimeError(f"{CHROMIUM} not found: install the Debian package 'chromium'")
    return playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
