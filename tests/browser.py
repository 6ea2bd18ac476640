"""The console in a real browser: headless Debian chromium through selenium, the console served by waitress."""
from __future__ import annotations

import base64
import contextlib
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")  # Debian's chromium-driver, the same version as the browser
# Ignored by .gitignore: a person opens them after the run; each run replaces the last run's.
SCREENSHOTS = REPO / "tests" / "output" / "screenshots"
WAIT_SECONDS = 10


def _require_chromium() -> None:
    """Skip without Debian's chromium and chromium-driver; under CI fail, for .ci/run installs them."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        message = f"{', '.join(missing)} not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def screenshots(request) -> Iterator[Path]:
    """The folder for this run's screenshots, emptied of the last run's; named at the end of the run."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    yield SCREENSHOTS
    shots = sorted(SCREENSHOTS.glob("*.png"))
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and shots:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"browser screenshots ({len(shots)}): {SCREENSHOTS}")


@pytest.fixture(scope="session")
def browser():
    """One headless chromium for the run (its cookies cleared for each test: see `page_for`)."""
    _require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                     "--lang=de-DE"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@dataclass
class Console:
    """The console served on a loopback port for one config."""

    config: Path
    url: str

    def at(self, path: str) -> str:
        return self.url + path


@contextlib.contextmanager
def serve_console(config: Path) -> Iterator[Console]:
    """Serve the console of `config` with waitress in a thread on a free loopback port, until the block ends."""
    import waitress

    from mailrelay.web.app import create_app

    server = waitress.create_server(create_app(config), host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, name="console", daemon=True)
    thread.start()
    try:
        yield Console(config, f"http://127.0.0.1:{server.effective_port}")
    finally:
        _stop(server)
        thread.join(timeout=10)


def _stop(server) -> None:
    """End waitress's loop: it runs until its map of sockets is empty, and the browser keeps connections
    open, so every socket (listener, connections, the trigger) is closed from within the loop's thread."""

    def close_all() -> None:
        for dispatcher in list(server._map.values()):
            dispatcher.close()

    server.trigger.pull_trigger(close_all)
    server.task_dispatcher.shutdown()


class Page:
    """The browser on one test's console: explicit waits, and a screenshot of each page seen."""

    def __init__(self, driver, console: Console, folder: Path, test_name: str):
        self.driver, self.console, self.folder = driver, console, folder
        self.prefix = re.sub(r"[^a-z0-9]+", "-", test_name.lower().removeprefix("test_")).strip("-")
        self.taken = 0

    def open(self, path: str) -> None:
        self.driver.get(self.console.at(path))

    def wait_for(self, css: str):
        """The first element matching `css`, once it is there (or a TimeoutException naming it)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as EC
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, WAIT_SECONDS).until(EC.presence_of_element_located((By.CSS_SELECTOR, css)),
                                                              f"no element {css!r} on {self.driver.current_url}")

    def wait_until_path(self, pattern: str) -> str:
        """Wait until the address's path matches `pattern` (a regular expression); the path."""
        from urllib.parse import urlsplit

        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.driver, WAIT_SECONDS).until(
            lambda driver: re.fullmatch(pattern, urlsplit(driver.current_url).path),
            f"the address never matched {pattern!r}")
        return urlsplit(self.driver.current_url).path

    def path(self) -> str:
        from urllib.parse import urlsplit

        return urlsplit(self.driver.current_url).path

    def text(self) -> str:
        return self.driver.find_element("tag name", "body").text

    def shot(self, what: str) -> Path:
        """A screenshot of the whole page as it is now (beyond the window's height), numbered in the order
        the test saw the pages."""
        self.taken += 1
        path = self.folder / f"{self.prefix}-{self.taken:02d}-{what}.png"
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 8000), "scale": 1}
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot",
                                           {"format": "png", "captureBeyondViewport": True, "clip": clip})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


@pytest.fixture
def serve():
    """serve(config) -> the Console served for that config, closed when the test ends."""
    with contextlib.ExitStack() as servers:
        yield lambda config: servers.enter_context(serve_console(config))


@pytest.fixture
def page_for(browser, screenshots, request):
    """page_for(console) -> a Page on that console, with no cookies from an earlier test."""

    def make(console: Console) -> Page:
        _forget_cookies(browser)
        return Page(browser, console, screenshots, request.node.name)

    yield make
    _forget_cookies(browser)


def _forget_cookies(driver) -> None:
    # Every test's console is on 127.0.0.1 (cookies ignore the port): clear them all, whatever page is open.
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
