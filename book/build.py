"""Build the course website from the stored, executed notebooks: ``make book`` runs this.

Four steps, each cheap when nothing changed:

1. fetch the pinned JavaScript the site serves itself (Mermaid, MathJax, onnxruntime-web) from the
   npm registry, check each tarball against its pinned SHA-256 and unpack the files the site needs
   into ``_build/vendor/`` (nothing is loaded from a CDN when a page is read); ``--vendor-only``
   stops here (``make test`` runs that, for notebook 10);
2. export the live page's models with ``course_utils.export.export_onnx`` (single files carrying
   their deployment metadata; ``COURSE_WEIGHTS`` chooses the weights) and write them, the sample
   images and the page's configuration into ``_build/live/``;
3. stage the sources in ``_build/src/``: a copy of every ``notebooks/NN_*.ipynb`` and of its
   solutions (``notebooks/solutions/``, linked from the lessons), the live page ``book/live.md``, and
   an ``index.md`` made from ``book/intro.md`` plus the lesson list, which is read from the notebooks
   (their H1 and the first sentence after it), so it never goes stale;
4. run Sphinx (myst-nb, sphinx-book-theme) into ``_build/html/``. Notebooks are not executed:
   the site shows the outputs stored in them (``make execute`` refreshes those).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

BOOK = Path(__file__).resolve().parent
REPO = BOOK.parent
BUILD = REPO / "_build"
NPM_CACHE = BUILD / "npm"
VENDOR = BUILD / "vendor"
LIVE = BUILD / "live"
SRC = BUILD / "src"
HTML = BUILD / "html"
DOCTREES = BUILD / "doctrees"
LESSONS_MARKER = "<!-- lessons -->"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
LIVE_PAGE = "live"  # book/live.md: classify a photo in the browser
LIVE_MODELS = ("mobilenet_v3_small", "resnet18")  # the first is the page's default


@dataclass(frozen=True)
class NpmAsset:
    """Files taken from one pinned npm package and served from ``_static/<target>/``."""

    package: str
    version: str
    sha256: str  # of the tarball ``npm pack`` downloads
    target: str
    files: dict[str, str]  # path in the tarball (a file, or a folder ending in "/") -> path under target


VENDORED = (
    NpmAsset(
        "mermaid", "12.3.0", "be0684e8d20bfc874df12c0f04927a5c482f57f2200eec54cca52a4583fd4040", "mermaid",
        {"package/dist/mermaid.min.js": "mermaid.min.js", "package/LICENSE": "LICENSE"},
    ),
    NpmAsset(
        "mathjax", "3.2.2", "1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09", "mathjax",
        {
            "package/es5/tex-mml-chtml.js": "tex-mml-chtml.js",
            "package/es5/input/tex/extensions/": "input/tex/extensions/",
            "package/es5/output/chtml/fonts/woff-v2/": "output/chtml/fonts/woff-v2/",
            "package/es5/a11y/": "a11y/",
            "package/es5/ui/": "ui/",
            "package/es5/sre/": "sre/",
            "package/LICENSE": "LICENSE",
        },
    ),
    # Two builds, each a small module and the WebAssembly runtime it loads from beside it: ort.wasm
    # (CPU only) and ort.webgpu (WebGPU, and the CPU), whose runtime is built with Asyncify so that
    # it can wait for the GPU, which makes it larger and slower on the CPU. The live page loads one.
    NpmAsset(
        "onnxruntime-web", "1.30.0", "d2228df7e4616bc3348bf504ee888f3bec43789a273f0a63f3e68d203ce3bf71",
        "onnxruntime-web",
        {
            **{f"package/dist/{name}": name for name in (
                "ort.wasm.min.mjs", "ort.wasm.min.mjs.map", "ort-wasm-simd-threaded.mjs",
                "ort-wasm-simd-threaded.wasm", "ort.webgpu.min.mjs", "ort.webgpu.min.mjs.map",
                "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm")},
            "package/package.json": "package.json",  # version and licence (MIT); the package has no LICENSE file
        },
    ),
)


@dataclass(frozen=True)
class Lesson:
    """One notebook as the index lists it."""

    name: str  # file stem, e.g. "04_onnxruntime_inference"
    title: str  # its H1, e.g. "04 · ONNX Runtime inference"
    summary: str  # the first sentence after the H1


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_tarball(asset: NpmAsset) -> Path:
    """Download the asset's npm tarball once (``npm pack``) and check it against the pinned hash."""
    tarball = NPM_CACHE / f"{asset.package}-{asset.version}.tgz"
    if not tarball.exists():
        if shutil.which("npm") is None:
            sys.exit(f"make book needs npm (Node.js) once, to fetch {asset.package}@{asset.version} from the "
                     "npm registry: install it (Debian/Ubuntu: apt-get install npm) and run make book again.")
        NPM_CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=NPM_CACHE) as tmp:
            subprocess.run(["npm", "pack", f"{asset.package}@{asset.version}", "--pack-destination", tmp,
                            "--silent"], check=True, stdout=subprocess.DEVNULL)
            Path(tmp, tarball.name).replace(tarball)
    actual = sha256_of(tarball)
    if actual != asset.sha256:
        tarball.unlink()
        sys.exit(f"{tarball.relative_to(REPO)} has SHA-256 {actual}, expected {asset.sha256} (pinned in "
                 "book/build.py): the download was removed; run make book again, and if it fails the same "
                 "way, do not use it.")
    return tarball


def vendor(asset: NpmAsset) -> None:
    """Unpack the files the site serves from the asset's checked tarball into ``_build/vendor/``."""
    target = VENDOR / asset.target
    stamp = target / ".unpacked"
    unpacked = f"{asset.sha256} {sorted(asset.files.items())}"  # the tarball and what was taken from it
    if stamp.exists() and stamp.read_text() == unpacked:
        return
    tarball = fetch_tarball(asset)
    BUILD.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=BUILD, prefix=".vendor-"))
    with tarfile.open(tarball) as archive:
        for member in archive.getmembers():
            for source, dest in asset.files.items():
                if member.isfile() and (member.name == source or
                                        (source.endswith("/") and member.name.startswith(source))):
                    member.name = dest + member.name[len(source):]
                    archive.extract(member, staging, filter="data")
                    break
    (staging / ".unpacked").write_text(unpacked)
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.replace(target)


def build_live_assets() -> None:
    """Export the live page's models and write them, the sample images and its configuration to ``_build/live/``.

    Each model is exported once per change of its weights (``export_onnx`` reuses an up-to-date
    file) as a single file with its deployment metadata, which the page reads. The samples are the
    readable images of ``data/images`` (``scan_folder``: an unreadable file is reported and left out).
    """
    from course_utils.browser import write_live_assets
    from course_utils.export import export_onnx
    from course_utils.imagefolder import scan_folder
    from course_utils.paths import data_dir
    from course_utils.weights import load_model

    models = [export_onnx(load_model(name), BUILD / "models" / f"{name}.onnx") for name in LIVE_MODELS]
    scan = scan_folder(data_dir() / "images")
    if scan.skipped:
        print(scan.report())
    write_live_assets(LIVE, models, scan.paths)


def first_sentence(paragraph: str) -> str:
    """Return the first sentence of a Markdown paragraph (abbreviations such as "e.g." do not end one)."""
    text = " ".join(paragraph.split())
    for match in re.finditer(r"[.!?](?=\s+[A-Z`*\[(])", text):
        last_word = text[:match.end()].rsplit(" ", 1)[-1]
        if last_word.lower() not in {"e.g.", "i.e.", "vs.", "etc.", "cf."}:
            return text[:match.end()]
    return text


def read_lesson(path: Path) -> Lesson:
    """Read a notebook's H1 and the first sentence of the paragraph after it."""
    notebook = nbformat.read(path, as_version=4)
    markdown = "\n\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    blocks = [block.strip() for block in re.split(r"\n\s*\n", markdown) if block.strip()]
    if not blocks or not blocks[0].startswith("# "):
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        sys.exit(f"{shown}: the first Markdown cell must start with the notebook's title as an H1, "
                 "e.g. '# 04 · ONNX Runtime inference'.")
    heading, *rest = blocks[0].split("\n", 1)
    prose = [block for block in rest + blocks[1:]
             if not re.match(r"(#|<|[-*+] |\d+\. |\||>|```|\*\*[^*]+\*\*$|\$\$)", block)]
    return Lesson(path.stem, heading[2:].strip(), first_sentence(prose[0]) if prose else "")


def index_page(lessons: list[Lesson], solutions: list[str]) -> str:
    """Return ``book/intro.md`` with the lesson list and the (hidden) tables of contents filled in.

    ``solutions`` are the pages of the exercise solutions, e.g. ``"solutions/04_..._solutions"``.
    """
    intro = (BOOK / "intro.md").read_text(encoding="utf-8")
    if LESSONS_MARKER not in intro:
        sys.exit(f"book/intro.md must contain the line {LESSONS_MARKER}, where the lesson list goes.")
    items = []
    for lesson in lessons:
        link = f"- **[{lesson.title}]({lesson.name}.ipynb)**"
        items.append(f"{link}: {lesson.summary}" if lesson.summary else link)
    listing = "\n".join(items) or "*No lesson has been written yet.*"
    toctrees = [("Lessons", [lesson.name for lesson in lessons]), ("In your browser", [LIVE_PAGE]),
                ("Solutions", solutions)]
    toctree = "\n".join(line for caption, pages in toctrees if pages for line in
                        ["", "```{toctree}", ":hidden:", f":caption: {caption}", ":maxdepth: 1", "", *pages,
                         "```"])
    return intro.replace(LESSONS_MARKER, listing) + toctree + "\n"


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write a file only when its content changes, so that Sphinx rebuilds only what changed."""
    if path.exists() and path.read_bytes() == data:
        return False
    path.write_bytes(data)
    return True


HTML_ANCHOR = re.compile(r'^<a id="([A-Za-z0-9_-]+)"></a>[ \t]*$', re.MULTILINE)


def site_copy(path: Path) -> bytes:
    """Return the notebook as the site builds it: its HTML anchors become MyST targets.

    A notebook marks a section that other notebooks link to with ``<a id="name"></a>`` on the
    line before its heading, which JupyterLab follows; MyST resolves links to ``(name)=``.
    """
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = HTML_ANCHOR.sub(r"(\1)=", cell.source)
    return nbformat.writes(notebook).encode("utf-8")


def copy_notebooks(notebooks: list[Path], target: Path) -> bool:
    """Make ``target`` hold site copies of exactly ``notebooks``; return whether a stale copy was removed."""
    target.mkdir(parents=True, exist_ok=True)
    names = {path.name for path in notebooks}
    stale = [path for path in target.glob("*.ipynb") if path.name not in names]
    for path in stale:
        path.unlink()
    for path in notebooks:
        write_if_changed(target / path.name, site_copy(path))
    return bool(stale)


def stage(notebooks: list[Path], solutions: list[Path]) -> tuple[list[Lesson], bool]:
    """Copy the notebooks, their solutions (into ``solutions/``), the live page and the generated
    index page into ``_build/src/``.

    Return the lessons, and whether the index (files, titles, summaries, solutions) changed.
    """
    stale = copy_notebooks(notebooks, SRC)
    stale = copy_notebooks(solutions, SRC / "solutions") or stale
    if stale:  # Sphinx does not delete the pages of removed sources: rebuild the site from scratch
        shutil.rmtree(HTML, ignore_errors=True)
        shutil.rmtree(DOCTREES, ignore_errors=True)
    write_if_changed(SRC / f"{LIVE_PAGE}.md", (BOOK / f"{LIVE_PAGE}.md").read_bytes())
    lessons = [read_lesson(path) for path in notebooks]
    pages = [f"solutions/{path.stem}" for path in solutions]
    return lessons, write_if_changed(SRC / "index.md", index_page(lessons, pages).encode("utf-8"))


def main() -> int:
    """Build the site; return Sphinx's exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--notebooks", type=Path, default=REPO / "notebooks",
                        help=f"folder whose {NOTEBOOK_GLOB} files become the lessons (default: notebooks/)")
    parser.add_argument("--vendor-only", action="store_true",
                        help="only fetch and check the pinned npm packages (make test needs onnxruntime-web)")
    args = parser.parse_args()
    for asset in VENDORED:
        vendor(asset)
    if args.vendor_only:
        return 0
    build_live_assets()
    lessons, lessons_changed = stage(sorted(args.notebooks.glob(NOTEBOOK_GLOB)),
                                     sorted((args.notebooks / "solutions").glob(NOTEBOOK_GLOB)))
    from sphinx.cmd.build import build_main

    # Every page's sidebar and previous/next links show lesson titles: when they change, rebuild all pages.
    fresh = ["-E"] if lessons_changed else []
    status = build_main(["-b", "html", "-c", str(BOOK), "-d", str(DOCTREES), "-W", "--keep-going", "-q",
                         *fresh, str(SRC), str(HTML)])
    if status == 0:
        count = f"{len(lessons)} lesson" + ("" if len(lessons) == 1 else "s")
        print(f"Built {HTML.relative_to(REPO)}/index.html ({count}). Serve it with make serve-book "
              "(the live page then runs on several threads) and open http://127.0.0.1:8000")
    return status


if __name__ == "__main__":
    sys.exit(main())
