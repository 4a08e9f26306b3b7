"""The live page of the course website (``live.html``) in headless Chromium, as a reader uses it.

Every sample image goes through ``window.courseClassify`` with each model, and its logits must lie
within the course's float32 tolerance of Python ONNX Runtime's on the same model file; every file
of the hostile folder (``tests/hostile_folder.py``) is uploaded through the page's file input and
must be classified or refused as Python's pipeline classifies or refuses it, with a message that
names it, and the page must keep working; no request may leave 127.0.0.1. A screenshot of the page
with a classified photo is saved as ``_build/screenshots/live.png``.

Needs the built site (``make book``), Debian's ``chromium`` and Playwright; ``make book-test``
builds the site and runs this. Under ``make test`` it skips when one of those is missing.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from course_utils.browser import chromium_missing, live_page
from course_utils.metadata import read_deployment_info
from course_utils.paths import data_dir
from course_utils.preprocess import load_rgb, preprocess
from course_utils.tolerance import assert_close, same_top_k
from hostile_folder import EXPECTED, build

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "_build" / "html"
STATIC = SITE / "_static"
PAGE = "live.html"
SCREENSHOT = REPO / "_build" / "screenshots" / "live.png"


def _missing_prerequisite() -> str | None:
    """Return why the live page cannot be tested here, or None when it can."""
    if not (SITE / PAGE).is_file():
        return f"no {SITE.relative_to(REPO)}/{PAGE}: run `make book-test` (it builds the site first)"
    return chromium_missing()


_REASON = _missing_prerequisite()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")


@dataclass
class Visit:
    """What one visit of the page found."""

    config: dict
    results: dict[tuple[str, str], dict]  # (model, sample) -> courseClassify's result
    uploads: dict[str, str | None]  # hostile file -> the page's error message, None if classified
    isolated: bool
    cores: int
    standin_shown: bool  # the weights line is drawn as a warning
    outside: set[str]
    errors: list[str]


async def _visit(hostile: Path) -> Visit:
    config = json.loads((STATIC / "live-config.json").read_text())
    async with live_page(SITE, PAGE, query="?provider=wasm&autorun=0") as live:
        found = await live.page.evaluate("[self.crossOriginIsolated, navigator.hardwareConcurrency]")
        results = {}
        for model in config["models"]:
            for sample in config["samples"]:
                results[model["name"], sample["name"]] = await live.classify(f"_static/{sample['url']}",
                                                                             model["name"])
        uploads = {name: await live.upload(hostile / name) for name, verdict in EXPECTED.items()
                   if verdict != "ignore" and (hostile / name).is_file()}
        await live.page.set_viewport_size({"width": 1100, "height": 1000})
        await live.upload(STATIC / config["samples"][0]["url"])  # the page still works after all that
        standin_shown = await live.page.locator("#course-live .live-standin").count() > 0
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        await live.page.screenshot(path=SCREENSHOT, full_page=True)
        return Visit(config, results, uploads, found[0], found[1], standin_shown, set(live.blocked),
                     list(live.errors))


@pytest.fixture(scope="module")
def visit(tmp_path_factory: pytest.TempPathFactory) -> Visit:
    """Visit the page once: every sample with every model, every hostile file, a screenshot."""
    return asyncio.run(_visit(build(tmp_path_factory.mktemp("hostile"))))


def test_every_sample_gives_pythons_logits_with_every_model(visit: Visit) -> None:
    assert visit.config["models"] and visit.config["samples"]
    for model in visit.config["models"]:
        path = STATIC / model["url"]
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = session.get_inputs()[0].name
        info = read_deployment_info(path)
        for sample in visit.config["samples"]:
            result = visit.results[model["name"], sample["name"]]
            image = preprocess(load_rgb(STATIC / sample["url"]))[np.newaxis]
            python = session.run(None, {feed: image})[0][0]
            assert_close(result["logits"], python, what=f"{model['name']}, {sample['name']}: page")
            assert same_top_k(result["logits"], python, k=5).all()
            ids = [entry["id"] for entry in result["top5"]]
            assert [info.label(i) for i in ids] == [entry["english"] for entry in result["top5"]]
            assert [info.label(i, "chinese") for i in ids] == [entry["chinese"] for entry in result["top5"]]
            assert (result["model"], result["weights"]) == (info.model, info.weights)
            assert result["provider"] == "wasm" and result["ms"] > 0


def test_samples_are_the_course_images(visit: Visit) -> None:
    names = [sample["name"] for sample in visit.config["samples"]]
    assert names and all((data_dir() / "images" / name).is_file() for name in names)


def test_hostile_files_are_refused_or_read_as_python_does(visit: Visit) -> None:
    """A file Python skips gets a message naming it; one Python reads is classified."""
    for name, message in visit.uploads.items():
        if EXPECTED[name] == "read":
            assert message is None, f"{name}: Python reads it, the page said {message!r}"
        else:
            assert message is not None and name in message, f"{name}: Python skips it, the page: {message!r}"
    assert "too many pixels" in visit.uploads["bomb.png"]
    assert "not an image format" in visit.uploads["notes.jpg"]
    assert "empty" in visit.uploads["empty.jpg"]


def test_no_request_leaves_the_machine_and_no_script_fails(visit: Visit) -> None:
    assert not visit.outside, f"requests outside 127.0.0.1: {sorted(visit.outside)}"
    assert not visit.errors, f"JavaScript errors: {visit.errors}"


def test_the_served_page_is_isolated_and_uses_several_threads(visit: Visit) -> None:
    assert visit.isolated
    threads = {result["threads"] for result in visit.results.values()}
    assert threads == {min(4, visit.cores)}


def test_stand_in_weights_are_unmistakable(visit: Visit) -> None:
    first = next(iter(visit.results.values()))
    assert visit.standin_shown == first["isStandin"]
    if first["isStandin"]:
        assert first["weights"].startswith("STAND-IN weights")
    assert SCREENSHOT.is_file() and SCREENSHOT.stat().st_size > 10_000
