"""The course website in a real browser: every page loads, links and images resolve, nothing is fetched
from outside the site, the Mermaid diagrams are drawn, and screenshots are saved for a person to look at.

Needs the built site (``make book``), Debian's ``chromium`` and the ``book`` extra (Playwright, used
only to drive the Chromium started here). ``make book-test`` builds the site and runs this; under a
plain ``make test`` it skips when one of those is missing.
"""

from __future__ import annotations

import functools
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urldefrag, urlsplit

import pytest

from course_utils.browser import chromium_process

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Request, Response, Route

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "_build" / "html"
SCREENSHOTS = REPO / "_build" / "screenshots"
LESSON_04 = "04_onnxruntime_inference"
# The flags the course documents for headless Chromium, plus no QUIC; a fresh profile is added per run.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic",
)
START_TIMEOUT_S = 30
PAGE_TIMEOUT_MS = 30_000
HTTP_TIMEOUT_S = 10
VIEWPORT = {"width": 1280, "height": 900}
FULL_PAGE_MAX_HEIGHT = 16_000
SETTLE_MS = 500
LOCAL_SCHEMES = ("data", "blob", "about")


def _missing_prerequisite() -> str | None:
    """Return why the site test cannot run here, or None when it can."""
    if not (SITE / "index.html").is_file():
        return f"no built site in {SITE.relative_to(REPO)}/: run `make book-test` (it builds the site first)"
    if shutil.which("chromium") is None:
        return ("Chromium is not installed: `sudo apt-get install -y chromium fonts-noto-cjk` "
                "(Debian/Ubuntu; see the README)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed: `make book-test` installs the book extra into .venv"
    return None


_REASON = _missing_prerequisite()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves the site without logging every request to stderr."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        """Log nothing."""


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """Serve ``_build/html`` on 127.0.0.1 (a free port) for the duration of the module."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(SITE)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=HTTP_TIMEOUT_S)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Start Debian's Chromium headless with a fresh profile and connect Playwright to it over CDP."""
    from playwright.sync_api import sync_playwright

    with chromium_process(START_TIMEOUT_S, CHROMIUM_FLAGS) as endpoint, sync_playwright() as playwright:
        connected = playwright.chromium.connect_over_cdp(endpoint, timeout=START_TIMEOUT_S * 1000)
        yield connected
        connected.close()


@dataclass
class Crawl:
    """What visiting every page found."""

    pages: list[str] = field(default_factory=list)
    outside_requests: set[str] = field(default_factory=set)
    failed_requests: set[str] = field(default_factory=set)
    page_errors: list[str] = field(default_factory=list)
    links: dict[str, set[str]] = field(default_factory=dict)  # target URL (with fragment) -> pages linking it
    broken_images: list[str] = field(default_factory=list)
    ids: dict[str, set[str]] = field(default_factory=dict)  # page URL -> element ids on it
    mermaid: dict[str, tuple[int, int]] = field(default_factory=dict)  # page -> (diagrams, drawn correctly)


def _is_local(url: str) -> bool:
    """Whether a request stays on this machine's site (or needs no network at all)."""
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    return parts.scheme in ("http", "https") and parts.hostname == "127.0.0.1"


def _new_context(browser: Browser, crawl: Crawl) -> BrowserContext:
    """A browser context that records every request and blocks (and records) those leaving 127.0.0.1."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(PAGE_TIMEOUT_MS)

    def route(route: Route) -> None:
        if _is_local(route.request.url):
            route.continue_()
        else:
            crawl.outside_requests.add(route.request.url)
            route.abort()

    context.route("**/*", route)
    return context


@pytest.fixture(scope="module")
def crawl(browser: Browser, base_url: str) -> Crawl:
    """Visit every HTML page of the site once, in a browser context that allows no outside request."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    result = Crawl()
    context = _new_context(browser, result)
    page = context.new_page()
    page.on("pageerror", lambda error: result.page_errors.append(f"{page.url}: {error}"))

    def on_request_failed(request: Request) -> None:
        if _is_local(request.url):  # outside requests fail because they are blocked: reported apart
            result.failed_requests.add(f"{request.url} ({request.failure})")

    def on_response(response: Response) -> None:
        if response.status >= 400:
            result.failed_requests.add(f"{response.url} (HTTP {response.status})")

    page.on("requestfailed", on_request_failed)
    page.on("response", on_response)
    for html in sorted(path for path in SITE.rglob("*.html") if path.relative_to(SITE).parts[0] != "_static"):
        url = base_url + html.relative_to(SITE).as_posix()
        response = page.goto(url, wait_until="load")
        assert response is not None and response.ok, f"{url} did not load: {response and response.status}"
        result.pages.append(url)
        diagrams = page.locator("pre.mermaid").count()
        if diagrams:
            try:
                page.wait_for_function("n => document.querySelectorAll('pre.mermaid svg').length >= n",
                                       arg=diagrams, timeout=PAGE_TIMEOUT_MS)
            except PlaywrightTimeoutError:
                pass  # reported by test_mermaid_diagrams_are_drawn_as_svg
            drawn = page.locator("pre.mermaid svg:not([aria-roledescription=error])").count()
            result.mermaid[url] = (diagrams, drawn)
        page.wait_for_load_state("networkidle")
        for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
            if _is_local(href) and urlsplit(href).scheme.startswith("http"):
                result.links.setdefault(href, set()).add(url)
        result.broken_images += [f"{url}: {src}" for src in page.eval_on_selector_all(
            "img", "images => images.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")]
        result.ids[url] = set(page.eval_on_selector_all("[id]", "elements => elements.map(e => e.id)"))
    context.close()
    return result


def test_every_page_loads_without_outside_requests(crawl: Crawl) -> None:
    """Every page and everything it loads comes from 127.0.0.1, with no error and no missing image."""
    assert len(crawl.pages) >= 2, f"expected the index and at least one lesson, found {crawl.pages}"
    problems = [f"requested outside 127.0.0.1 (blocked): {url}" for url in sorted(crawl.outside_requests)]
    problems += [f"request failed: {failure}" for failure in sorted(crawl.failed_requests)]
    problems += [f"JavaScript error: {error}" for error in crawl.page_errors]
    problems += [f"image did not load: {image}" for image in crawl.broken_images]
    assert not problems, "\n".join(problems)


def test_internal_links_resolve(crawl: Crawl) -> None:
    """Every link to the site answers HTTP 200, and its #fragment names an element of the page."""
    broken = []
    for link, sources in sorted(crawl.links.items()):
        target, fragment = urldefrag(link)
        target = target.split("?", 1)[0]
        try:
            with urllib.request.urlopen(target, timeout=HTTP_TIMEOUT_S) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        if status != 200:
            broken.append(f"{link} (HTTP {status}), linked from {sorted(sources)}")
        elif fragment and target in crawl.ids and fragment not in crawl.ids[target]:
            broken.append(f"{link} (no element with id {fragment!r}), linked from {sorted(sources)}")
    assert not broken, "broken internal links:\n" + "\n".join(broken)


def test_mermaid_diagrams_are_drawn_as_svg(crawl: Crawl) -> None:
    """Each ```mermaid block became an SVG drawing (not Mermaid's syntax-error picture)."""
    if not crawl.mermaid:
        pytest.skip("no page of the site has a Mermaid diagram yet")
    not_drawn = [f"{page}: {drawn} of {diagrams} Mermaid diagrams drawn as SVG"
                 for page, (diagrams, drawn) in crawl.mermaid.items() if drawn < diagrams]
    assert not not_drawn, "\n".join(not_drawn)


@pytest.mark.parametrize("name", ["index", LESSON_04])
def test_screenshot(browser: Browser, base_url: str, name: str) -> None:
    """Save the top of the page as ``_build/screenshots/NAME.png`` and the whole page as ``NAME_full.png``."""
    if not (SITE / f"{name}.html").is_file():
        pytest.skip(f"no {name}.html in the site: notebooks/{name}.ipynb does not exist yet")
    crawl = Crawl()
    context = _new_context(browser, crawl)
    page = context.new_page()
    page.goto(f"{base_url}{name}.html", wait_until="networkidle")
    if page.locator("pre.mermaid").count():
        page.wait_for_selector("pre.mermaid svg", timeout=PAGE_TIMEOUT_MS)
    page.evaluate("document.fonts.ready.then(() => true)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png")
    # The whole page, laid out in a window as tall as the page (Chromium caps images at 16384 pixels).
    height = min(page.evaluate("document.documentElement.scrollHeight"), FULL_PAGE_MAX_HEIGHT)
    page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
    page.wait_for_timeout(SETTLE_MS)
    page.screenshot(path=SCREENSHOTS / f"{name}_full.png")
    context.close()
    outside = sorted(crawl.outside_requests)
    assert not outside, f"{name}.html requested outside 127.0.0.1 (blocked): {outside}"
