"""Build a folder of the files a learner's image folder really contains, good and bad.

Used by the unit tests of every folder-reading helper, and by ``make test-matrix``, which points
``COURSE_IMAGES`` at such a folder and runs the notebooks that read it::

    python tests/hostile_folder.py results/hostile_images

Each entry of :data:`EXPECTED` says whether the file must be read, skipped or ignored.
"""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from course_utils.loadtest import pixel_bomb_png

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "images"

# name -> "read" (a usable image), "skip" (reported with a reason) or "ignore" (not an image name)
EXPECTED = {
    "tabby_cat.jpg": "read",
    "cameraman_gray.png": "read",
    "UPPER CASE.JPG": "read",
    "猫 cat (1).jpeg": "read",
    "jpeg_named.png": "read",
    "rotated_exif.jpg": "read",
    "sixteen_bit.png": "read",
    "cmyk.jpg": "read",
    "tiny_1x1.png": "read",
    "empty.jpg": "skip",
    "notes.jpg": "skip",
    "truncated.jpg": "skip",
    "corrupt.png": "skip",
    "bomb.png": "skip",
    "panorama_1x4000.png": "skip",
    "album.jpg": "skip",
    "._tabby_cat.jpg": "ignore",
    ".DS_Store": "ignore",
    "README.txt": "ignore",
}


def build(folder: Path) -> Path:
    """(Re)create ``folder`` with one file per entry of :data:`EXPECTED`; return it."""
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cat = (SAMPLES / "tabby_cat.jpg").read_bytes()
    shutil.copy(SAMPLES / "tabby_cat.jpg", folder / "tabby_cat.jpg")
    shutil.copy(SAMPLES / "cameraman_gray.png", folder / "cameraman_gray.png")
    (folder / "UPPER CASE.JPG").write_bytes(cat)
    (folder / "猫 cat (1).jpeg").write_bytes(cat)
    (folder / "jpeg_named.png").write_bytes(cat)  # a JPEG with the wrong suffix: Pillow reads the content
    with Image.open(SAMPLES / "tabby_cat.jpg") as image:
        exif = Image.Exif()
        exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
        image.save(folder / "rotated_exif.jpg", exif=exif.tobytes())
        grey16 = np.asarray(image.convert("L"), dtype=np.uint16) * 257  # 0-255 -> 0-65535
        Image.fromarray(grey16).save(folder / "sixteen_bit.png")
        image.convert("CMYK").save(folder / "cmyk.jpg")
    Image.new("RGB", (1, 1), (200, 30, 30)).save(folder / "tiny_1x1.png")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("Shopping list: rice, tea, batteries.\n", encoding="utf-8")
    (folder / "truncated.jpg").write_bytes(cat[: len(cat) // 2])
    png = (SAMPLES / "cameraman_gray.png").read_bytes()
    (folder / "corrupt.png").write_bytes(png[:200] + bytes(b ^ 0xFF for b in png[200:400]) + png[400:])
    (folder / "bomb.png").write_bytes(pixel_bomb_png(60_000, 60_000))
    buffer = io.BytesIO()
    Image.new("L", (1, 4000), 128).save(buffer, format="PNG")
    (folder / "panorama_1x4000.png").write_bytes(buffer.getvalue())
    (folder / "album.jpg").mkdir()
    (folder / "._tabby_cat.jpg").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 60)  # AppleDouble
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + b"\x00" * 32)
    (folder / "README.txt").write_text("Photos from the trip.\n", encoding="utf-8")
    return folder


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} FOLDER")
    print(build(Path(sys.argv[1])))
