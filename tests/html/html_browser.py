"""Headless Chromium for the HTML report tests: Debian's /usr/bin/chromium driven by
Playwright for Python (never a browser download), with a fresh profile, no network features,
and a record of every console message, page error and request the page makes."""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Iterator

CHROMIUM = os.environ.get("PCAPSMTP_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def available() -> str | None:
    """None when the browser can be driven, else why not (for a skip message)."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install playwright; no browser download)"
    return None


@dataclass
class Opened:
    page: Any
    console: list[tuple[str, str]] = field(default_factory=list)   #: (type, text)
    errors: list[str] = field(default_factory=list)                #: uncaught exceptions
    requests: list[str] = field(default_factory=list)              #: every URL the page asked for
    dialogs: list[str] = field(default_factory=list)               #: alert()/confirm() opened

    def problems(self) -> list[str]:
        return ([f"console {t}: {m}" for t, m in self.console if t in ("error", "warning")]
                + [f"page error: {e}" for e in self.errors] + [f"dialog: {d}" for d in self.dialogs])


class Browser:
    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright
        self._profile = tempfile.mkdtemp(prefix="pcapsmtp-chromium-")
        self._pw = sync_playwright().start()
        exe = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
        self._ctx = self._pw.chromium.launch_persistent_context(
            self._profile, executable_path=exe, headless=True, args=ARGS,
            viewport={"width": 1366, "height": 900}, service_workers="block")

    def open(self, path: Path, *, timeout_ms: int = 60_000) -> Opened:
        page = self._ctx.new_page()
        o = Opened(page)
        page.on("console", lambda m: o.console.append((m.type, m.text)))
        page.on("pageerror", lambda e: o.errors.append(str(e)))
        page.on("request", lambda r: o.requests.append(r.url))

        def dialog(d: Any) -> None:
            o.dialogs.append(d.message)
            d.dismiss()
        page.on("dialog", dialog)
        page.goto(Path(path).resolve().as_uri(), wait_until="load", timeout=timeout_ms)
        page.wait_for_selector("body[data-ready='1']", state="attached", timeout=timeout_ms)
        return o

    def close(self) -> None:
        try:
            self._ctx.close()
        finally:
            self._pw.stop()
            shutil.rmtree(self._profile, ignore_errors=True)


def browser() -> Iterator[Browser]:
    b = Browser()
    try:
        yield b
    finally:
        b.close()
