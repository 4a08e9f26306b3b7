"""Where the course keeps its data, models and results, and how paths are shown."""

from __future__ import annotations

import os
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def repo_root() -> Path:
    """Return the course's root folder (``COURSE_ROOT`` overrides it)."""
    override = os.environ.get("COURSE_ROOT")
    if override:
        return Path(override).expanduser().resolve()
    package_parent = Path(__file__).resolve().parents[1]
    if (package_parent / "data").is_dir():
        return package_parent
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "data" / "imagenet_classes.csv").is_file():
            return folder
    return package_parent


def data_dir() -> Path:
    """Return the folder with the label file and the sample images."""
    return repo_root() / "data"


def _setting_path(name: str, default: Path) -> Path:
    """Return the folder in environment variable ``name``, else ``default``.

    ``~`` is expanded, and a relative path is taken from the course's root folder, where
    ``make`` runs: a notebook's kernel runs in ``notebooks/``, so the shell's meaning of
    ``COURSE_IMAGES=photos`` would otherwise be lost.
    """
    override = os.environ.get(name)
    if not override:
        return default
    path = Path(override).expanduser()
    return path if path.is_absolute() else repo_root() / path


def images_dir() -> Path:
    """Return the image folder the notebooks use (``COURSE_IMAGES`` overrides it)."""
    return _setting_path("COURSE_IMAGES", data_dir() / "images")


def models_dir() -> Path:
    """Return the (git-ignored) folder for exported models, creating it if needed."""
    folder = _setting_path("COURSE_MODELS", repo_root() / "models")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def results_dir() -> Path:
    """Return the (git-ignored) folder for measured results, creating it if needed."""
    folder = repo_root() / "results"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def list_images(folder: Path) -> list[Path]:
    """Return the entries of ``folder`` whose names say "image", sorted by name.

    That is an image suffix in any case (``.jpg``, ``.JPEG``, ``.png``, ...) on a name that is
    not hidden: macOS's ``._photo.jpg`` companions hold metadata, not pixels. Nothing is opened
    here; :func:`course_utils.imagefolder.scan_folder` decodes them and reports the bad ones.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Image folder {display_path(folder)} does not exist or is not a folder: "
            "set COURSE_IMAGES to a folder of images, or unset it to use data/images."
        )
    return sorted((p for p in folder.iterdir()
                   if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")),
                  key=lambda p: p.name)


def display_path(path: Path | str) -> str:
    """Show ``path`` relative to the course root when it lies inside it.

    Stored notebook outputs then read the same on every machine.
    """
    path = Path(path)
    try:
        return path.resolve().relative_to(repo_root()).as_posix()
    except ValueError:
        return path.name if path.is_absolute() else path.as_posix()
