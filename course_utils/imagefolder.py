"""The one robust reader of an image folder: every notebook cell that reads the folder starts here.

A learner's folder holds whatever a camera, a phone sync or a download left there: empty files,
half-copied JPEGs, text files renamed ``.jpg``, macOS's ``._photo.jpg`` companions, a folder
called ``album.jpg``, a panorama of 40000 x 300 pixels, names in any script. :func:`scan_folder`
opens every candidate fully once, and returns the readable images and, for every other file, the
reason it was left out. One broken file never stops the scan, and each is reported once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from course_utils.paths import display_path, list_images
from course_utils.preprocess import MAX_PIXELS, ImageReadError, load_rgb, resized_short_side_size

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class ImageRecord:
    """A readable image: where it is and what its file holds (before EXIF rotation and conversion)."""

    path: Path
    format: str
    mode: str
    width: int
    height: int

    @property
    def size(self) -> str:
        """``"WxH"`` as stored in the file."""
        return f"{self.width}x{self.height}"


@dataclass(frozen=True)
class FolderScan:
    """What :func:`scan_folder` found: readable images, skipped files with reasons, ignored names."""

    folder: Path
    images: tuple[ImageRecord, ...]
    skipped: tuple[tuple[Path, str], ...]
    ignored: tuple[Path, ...]

    @property
    def paths(self) -> list[Path]:
        """The readable images' paths, sorted by name."""
        return [record.path for record in self.images]

    def table(self) -> pd.DataFrame:
        """One row per readable image: file, format, mode and size as stored."""
        import pandas as pd  # here, so that a service can scan without pandas

        return pd.DataFrame(
            [(display_path(r.path), r.format, r.mode, r.size) for r in self.images],
            columns=["file", "format", "mode in the file", "size"],
        )

    def report(self) -> str:
        """A few lines for a notebook: counts, then each skipped file with its reason."""
        lines = [f"{len(self.images)} readable images in {display_path(self.folder)}; "
                 f"{len(self.skipped)} skipped; {len(self.ignored)} other files ignored"]
        lines += [f"  SKIPPED {path.name!r}: {reason}" for path, reason in self.skipped]
        if self.ignored:
            names = ", ".join(repr(p.name) for p in self.ignored[:5])
            more = f" and {len(self.ignored) - 5} more" if len(self.ignored) > 5 else ""
            lines.append(f"  ignored (not an image suffix, or hidden): {names}{more}")
        return "\n".join(lines)


def inspect_image(path: Path | str, max_pixels: int = MAX_PIXELS) -> ImageRecord:
    """Decode ``path`` fully (as :func:`~course_utils.preprocess.load_rgb` does) and describe it.

    Raises :class:`~course_utils.preprocess.ImageReadError` with the reason and what to do,
    including for images whose aspect ratio is too extreme to resize safely.
    """
    path = Path(path)
    image = load_rgb(path, max_pixels)  # every failure becomes an ImageReadError
    width, height = resized_short_side_size(*image.size)
    if width * height > max_pixels:
        raise ImageReadError(
            path, f"its aspect ratio is too extreme ({image.width}x{image.height} would resize to "
            f"{width}x{height})", "Crop it to the part you want classified.")
    with Image.open(path) as header:
        return ImageRecord(path, header.format or "?", header.mode, header.width, header.height)


def scan_folder(folder: Path | str, max_pixels: int = MAX_PIXELS) -> FolderScan:
    """Read every file in ``folder`` (not its subfolders) once and sort it into readable, skipped, ignored.

    Candidates are the names :func:`~course_utils.paths.list_images` returns; each is
    decoded in full, so an empty, truncated, corrupt or oversized file is skipped with its
    reason. Other names (``SOURCES.md``, ``.DS_Store``, ``._photo.jpg``) are ignored and
    counted. Raises ``FileNotFoundError`` only when ``folder`` itself does not exist.
    """
    folder = Path(folder)
    candidates = list_images(folder)  # raises FileNotFoundError for a missing folder
    images, skipped = [], []
    for path in candidates:
        try:
            images.append(inspect_image(path, max_pixels))
        except ImageReadError as exc:
            skipped.append((path, str(exc)))
    chosen = set(candidates)
    ignored = sorted((p for p in folder.iterdir() if p not in chosen and not p.is_dir()), key=lambda p: p.name)
    return FolderScan(folder, tuple(images), tuple(skipped), tuple(ignored))
