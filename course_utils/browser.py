"""A local web server and a headless Chromium for the course's browser lesson (notebook 10).

Three jobs, each small:

* :func:`serve` serves a folder on 127.0.0.1 in a background thread, optionally with the two
  headers that make a page *cross-origin isolated* (``Cross-Origin-Opener-Policy: same-origin``
  and ``Cross-Origin-Embedder-Policy: require-corp``). Only an isolated page may share memory
  between threads (``SharedArrayBuffer``), so only there can onnxruntime-web run on several threads.
  ``python -m course_utils.browser serve FOLDER`` runs the same server from a shell
  (``make serve-book`` serves the course website with it).
* :func:`chromium` starts Debian's ``chromium`` headless with a fresh profile and connects
  Playwright (its asynchronous API, which works in Jupyter) to it; requests to other hosts fail,
  and :func:`local_only` records them; :func:`live_page` does all of it for the live page and
  yields a :class:`LivePage` to drive it.
* :func:`stage_live_page` assembles the live classifier page (``book/static/live/``), the pinned
  onnxruntime-web files, the exported models and the sample images into one folder, laid out
  as the course website lays them out, so that a notebook tests exactly the page readers use.

Everything here imports no PyTorch; Playwright is imported only by :func:`chromium`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import numpy as np

from course_utils.paths import display_path, repo_root
from course_utils.timing import Timing

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

# The flags the course uses for headless Chromium; a fresh profile is added per run. Requests to
# any host but this machine go to a proxy that does not exist (port 9 of 127.0.0.1, which nothing
# serves), so they fail: Chromium sends requests to 127.0.0.1 directly, never through a proxy.
NO_PROXY_PORT = 9
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    f"--proxy-server=http://127.0.0.1:{NO_PROXY_PORT}",
)
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
}
START_TIMEOUT_S = 30
PAGE_TIMEOUT_S = 120  # the longest wait for the page and its model (a large model on a busy machine)
STOP_TIMEOUT_S = 10
LOCAL_SCHEMES = ("data", "blob", "about")
# What the live page is made of: its own files (HTML, JavaScript, CSS) and onnxruntime-web's.
LIVE_SOURCE = Path(__file__).resolve().parents[1] / "book" / "static" / "live"
# The page imports ort.wasm.min.mjs for the wasm provider and ort.webgpu.min.mjs where the browser
# offers WebGPU; each loads its runtime (the .mjs and .wasm beside it) itself.
ORT_BUILDS = {"wasm": "ort.wasm.min.mjs", "webgpu": "ort.webgpu.min.mjs"}
ORT_WEB_FILES = (*ORT_BUILDS.values(), *(f"{name}.map" for name in ORT_BUILDS.values()),
                 "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm",
                 "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm",
                 "package.json")
LIVE_CONFIG = "live-config.json"
STANDALONE_PAGE = "live/standalone.html"


def onnxruntime_web_dir() -> Path:
    """Return where ``book/build.py`` unpacks the pinned, hash-checked onnxruntime-web files."""
    return repo_root() / "_build" / "vendor" / "onnxruntime-web"


def ensure_onnxruntime_web() -> Path:
    """Return :func:`onnxruntime_web_dir`, fetching onnxruntime-web first if it is not there yet.

    The fetch is ``book/build.py --vendor-only``: ``npm pack`` of the pinned version, its SHA-256
    checked against the pin in ``book/build.py``, the files the page needs unpacked.
    """
    folder = onnxruntime_web_dir()
    if not all((folder / name).is_file() for name in ORT_WEB_FILES):
        subprocess.run([sys.executable, str(repo_root() / "book" / "build.py"), "--vendor-only"],
                       check=True)
    return folder


class IsolatingHandler(SimpleHTTPRequestHandler):
    """Serves files quietly, with or without the cross-origin isolation headers, and logs requests."""

    isolated = True
    log: list[tuple[str, int]]

    def end_headers(self) -> None:
        """Add the isolation headers (when asked) to every response."""
        if self.isolated:
            for name, value in ISOLATION_HEADERS.items():
                self.send_header(name, value)
        super().end_headers()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Record (path, status) instead of printing a line per request."""
        self.log.append((self.path, int(code) if isinstance(code, int) else 0))

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        """Print nothing."""


@dataclass
class Server:
    """A running :func:`serve`: its base URL and the requests it answered, as (path, status)."""

    url: str
    isolated: bool
    log: list[tuple[str, int]] = field(default_factory=list)


@contextlib.contextmanager
def serve(folder: Path | str, *, isolated: bool = True, port: int = 0) -> Iterator[Server]:
    """Serve ``folder`` on ``http://127.0.0.1:PORT/`` (a free port by default) until the block ends.

    With ``isolated=True`` every response carries the COOP/COEP headers that make pages
    cross-origin isolated (see the module docstring).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"Cannot serve {display_path(folder)}: it is not a folder.")
    log: list[tuple[str, int]] = []
    handler = type("Handler", (IsolatingHandler,), {"isolated": isolated, "log": log})
    server = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{server.server_address[1]}/", isolated, log)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=STOP_TIMEOUT_S)


def chromium_missing() -> str | None:
    """Return why :func:`chromium` cannot start here (one line), or None when it can."""
    if shutil.which("chromium") is None:
        return "Chromium is not installed (Debian/Ubuntu: sudo apt-get install -y chromium fonts-noto-cjk)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: make install adds it (the test extra)"
    return None


@contextlib.contextmanager
def chromium_process(timeout_s: float = START_TIMEOUT_S, flags: tuple[str, ...] = CHROMIUM_FLAGS) -> Iterator[str]:
    """Start headless Chromium with a fresh profile; yield its DevTools endpoint (``http://127.0.0.1:PORT``).

    Chromium runs as a child process and is stopped, and its profile deleted, when the block
    ends, whatever happened inside it. Both the notebook's asynchronous :func:`chromium` and the
    site test's synchronous fixture connect Playwright to this endpoint.
    """
    reason = chromium_missing()
    if reason is not None:
        raise RuntimeError(f"Cannot start the browser: {reason}.")
    # Chromium's helper processes may still be writing to the profile while it is removed.
    with tempfile.TemporaryDirectory(prefix="course-chromium-", ignore_cleanup_errors=True) as profile:
        process = subprocess.Popen(
            [shutil.which("chromium") or "chromium", *flags, f"--user-data-dir={profile}",
             "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + timeout_s
            while not (port_file.is_file() and port_file.read_text().strip()):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Chromium did not start within {timeout_s:g} s "
                                       f"(exit status {process.poll()}).")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port_file.read_text().split()[0]}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)


@contextlib.asynccontextmanager
async def chromium(timeout_s: float = START_TIMEOUT_S) -> AsyncIterator[Browser]:
    """Start headless Chromium (:func:`chromium_process`) and yield a Playwright ``Browser`` connected to it.

    Playwright's asynchronous API is used because Jupyter runs an event loop, where its
    synchronous API refuses to work: write ``async with chromium() as browser:`` in a cell.
    """
    from playwright.async_api import async_playwright

    with chromium_process(timeout_s) as endpoint:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.connect_over_cdp(endpoint, timeout=timeout_s * 1000)
            try:
                yield browser
            finally:
                await browser.close()


def is_local(url: str) -> bool:
    """Whether a request stays on this machine (127.0.0.1) or needs no network at all."""
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    return parts.scheme in ("http", "https") and parts.hostname == "127.0.0.1"


def local_only(context: BrowserContext) -> set[str]:
    """Return the set of URLs outside 127.0.0.1 that pages of ``context`` request, filled as they do.

    The requests themselves fail (see ``CHROMIUM_FLAGS``). They are watched, not intercepted:
    Playwright's request interception (``route``) would switch off the browser's HTTP cache.
    """
    outside: set[str] = set()
    context.on("request", lambda request: None if is_local(request.url) else outside.add(request.url))
    return outside


MODEL_TITLES = {"mobilenet_v3_small": "MobileNetV3-Small", "resnet18": "ResNet-18"}


def _copy_if_changed(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` unless ``target`` already has its size and modification time."""
    if target.is_file():
        have, want = target.stat(), source.stat()
        if have.st_size == want.st_size and have.st_mtime_ns == want.st_mtime_ns:
            return
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def _sync_folder(target: Path, files: Sequence[Path]) -> list[str]:
    """Make ``target`` hold copies of exactly ``files`` (by name); return the names."""
    target.mkdir(parents=True, exist_ok=True)
    names = [path.name for path in files]
    for stale in target.iterdir():
        if stale.name not in names and stale.is_file():
            stale.unlink()
    for path in files:
        _copy_if_changed(path, target / path.name)
    return names


def write_live_assets(target: Path | str, models: Sequence[Path], samples: Sequence[Path]) -> Path:
    """Copy ``models`` (``.onnx`` files with deployment metadata) and ``samples`` (images) into
    ``target/models`` and ``target/samples``, and describe them in ``target/live-config.json``.

    The first model is the page's default. The configuration holds only what the page cannot
    read from the model files themselves: where they are, their names and sizes, and the samples.
    """
    from course_utils.metadata import read_deployment_info

    target = Path(target)
    entries = []
    for path, name in zip(models, _sync_folder(target / "models", models)):
        model = read_deployment_info(path).model
        entries.append({"name": model, "title": MODEL_TITLES.get(model, model), "url": f"models/{name}",
                        "megabytes": round(path.stat().st_size / 1e6, 1)})
    config = {
        "ort": {provider: f"onnxruntime-web/{name}" for provider, name in ORT_BUILDS.items()},
        "models": entries,
        "samples": [{"name": name, "url": f"samples/{name}"}
                    for name in _sync_folder(target / "samples", samples)],
    }
    (target / LIVE_CONFIG).write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    return target / LIVE_CONFIG


def stage_live_page(folder: Path | str, models: Sequence[Path], samples: Sequence[Path]) -> str:
    """Lay out the live page in ``folder`` as the website's ``_static/`` holds it; return its path.

    ``folder/live/`` gets the page's own files (``book/static/live/``),
    ``folder/onnxruntime-web/`` the pinned onnxruntime-web files, and :func:`write_live_assets`
    the models, samples and configuration. Serve ``folder`` and open the returned path
    (``live/standalone.html``): the page of the website without the website around it.
    """
    folder = Path(folder)
    _sync_folder(folder / "live", sorted(p for p in LIVE_SOURCE.iterdir() if p.is_file()))
    ort_dir = ensure_onnxruntime_web()
    _sync_folder(folder / "onnxruntime-web", [ort_dir / name for name in ORT_WEB_FILES])
    write_live_assets(folder, models, samples)
    return STANDALONE_PAGE


@dataclass
class LivePage:
    """The live page open in headless Chromium, served by :func:`serve` (see :func:`live_page`)."""

    page: Page
    server: Server
    blocked: set[str]  # requests that tried to leave 127.0.0.1 (and failed)
    errors: list[str]  # uncaught JavaScript errors

    def url(self, path: str) -> str:
        """The served URL of ``path`` (relative to the served folder)."""
        return self.server.url + path

    async def classify(self, source: str, model: str | None = None) -> dict:
        """Call ``window.courseClassify`` on the URL of ``source`` (a path in the served folder)."""
        return await self.page.evaluate("([url, model]) => courseClassify(url, model ? {model} : {})",
                                        [self.url(source), model])

    async def upload(self, path: Path | str) -> str | None:
        """Choose ``path`` in the page's file input and wait until the page has handled it.

        Returns the error message the page shows, or None when it classified the image.
        """
        finished = "() => Number(document.getElementById('course-live').dataset.finished || 0)"
        before = await self.page.evaluate(finished)
        await self.page.set_input_files("#course-live-file", str(path))
        await self.page.wait_for_function(f"n => ({finished})() > n", arg=before)
        error = self.page.locator("#course-live .live-error")
        return await error.inner_text() if await error.is_visible() else None

    async def visit_again(self) -> LivePage:
        """Open the same page in a new tab of the same browser profile (its cache included)."""
        return LivePage(await _open(self.page.context, self.page.url, self.errors), self.server,
                        self.blocked, self.errors)


async def _open(context: BrowserContext, url: str, errors: list[str]) -> Page:
    """Open ``url`` in a new tab and wait until the page has defined ``window.courseClassify``."""
    tab = await context.new_page()
    tab.on("pageerror", lambda error: errors.append(str(error)))
    await tab.goto(url)
    await tab.wait_for_function("typeof window.courseClassify === 'function'")
    return tab


@contextlib.asynccontextmanager
async def live_page(
    folder: Path | str, page: str = STANDALONE_PAGE, *, query: str = "", isolated: bool = True,
    timeout_s: float = PAGE_TIMEOUT_S,
) -> AsyncIterator[LivePage]:
    """Serve ``folder``, open ``page`` (plus ``query``, e.g. ``"?threads=1"``) in headless Chromium.

    Yields once ``window.courseClassify`` is defined; no request can leave 127.0.0.1 (those that
    try are recorded in ``LivePage.blocked``). The page
    runs in the profile's own browser context, whose disk cache keeps what it downloads, as a
    reader's browser does. Chromium and the server stop when the block ends.
    """
    with serve(folder, isolated=isolated) as server:
        async with chromium() as browser:
            context = browser.contexts[0]
            context.set_default_timeout(timeout_s * 1000)
            blocked = local_only(context)
            errors: list[str] = []
            yield LivePage(await _open(context, server.url + page + query, errors), server, blocked, errors)


async def time_in_page(
    live: LivePage, source: str, *, warmup: int, repeats: int, model: str | None = None
) -> tuple[Timing, dict]:
    """Time ``session.run`` in the page as :func:`course_utils.timing.time_call` times a Python call.

    One first run (reported apart), ``warmup`` untimed runs, then ``repeats`` timed runs, each
    measured by the page's own clock (``performance.now()`` around ``session.run``: the ``ms``
    that ``courseClassify`` returns), so decoding, preprocessing and the round trip to Python
    are left out. Returns the timing and the first run's result (``loadMs``, ``threads``, ...).
    """
    first = await live.classify(source, model)
    for _ in range(warmup):
        await live.classify(source, model)
    samples = np.array([(await live.classify(source, model))["ms"] for _ in range(repeats)])
    p10, median, p90 = np.percentile(samples, [10, 50, 90])
    return Timing(repeats, float(median), float(p10), float(p90), first["ms"]), first


def js_function(path: Path | str, name: str) -> str:
    """Return the source of the top-level JavaScript function ``name`` in ``path``, with its comment.

    For notebooks that show the code they rely on, as ``inspect.getsource`` does for Python.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    pattern = re.compile(rf"^export (async )?function\*? ?{re.escape(name)}\(")
    start = next((i for i, line in enumerate(lines) if pattern.match(line)), None)
    if start is None:
        raise ValueError(f"{display_path(path)} has no top-level function {name!r}.")
    end = next(i for i in range(start, len(lines)) if lines[i] == "}")
    while start > 0 and lines[start - 1].lstrip().startswith(("/**", "*", "//")):
        start -= 1
    return "\n".join(lines[start:end + 1])


def ort_web_error(message: str) -> str:
    """Return onnxruntime-web's error message without its prefix and the C++ location of the check."""
    text = message.split("ERROR_MESSAGE: ", 1)[-1].strip()
    return re.sub(r"^/\S+:\d+ .*?\) (?=[A-Z])", "", text).splitlines()[0]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m course_utils.browser serve FOLDER [--port N] [--no-isolation]``: serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m course_utils.browser", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="serve a folder on 127.0.0.1 (with COOP/COEP headers)")
    serve_parser.add_argument("folder", type=Path)
    serve_parser.add_argument("--port", type=int, default=8000)
    serve_parser.add_argument("--no-isolation", action="store_true",
                              help="leave out the COOP/COEP headers (pages then run on one thread)")
    args = parser.parse_args(argv)
    isolated = not args.no_isolation
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(serve(args.folder, isolated=isolated, port=args.port))
        except FileNotFoundError as error:
            print(error, file=sys.stderr)
            return 2
        except OSError as error:  # the port is taken
            print(f"Cannot serve on port {args.port}: {error.strerror}. Choose another one: --port N "
                  "(make serve-book PORT=N).", file=sys.stderr)
            return 2
        headers = "with" if isolated else "without"
        print(f"Serving {display_path(args.folder)} at {server.url} ({headers} the COOP/COEP headers "
              "that allow several threads). Press Ctrl-C to stop.", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("Stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
