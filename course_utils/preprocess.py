"""Preprocessing for ImageNet classifiers with Pillow and NumPy only (no torch at deploy time).

Taught in notebook 04 (``04_onnxruntime_inference.ipynb``), which prints these functions' source.
The steps reproduce torchvision's ``weights.transforms()`` for PIL input
(resize the short side to 256 with bilinear filtering, centre-crop 224, scale to
[0, 1], normalise with the ImageNet mean and standard deviation) and return
float32 arrays in channel-first layout, ready for ONNX Runtime.
Each step is its own function so that a notebook can show them one by one.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO, Iterable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from course_utils.paths import display_path

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
BACKGROUND = (255, 255, 255)
SIXTEEN_BIT_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")
# Pillow's own decompression-bomb threshold (about 89 megapixels, 268 MB as RGB): a larger image
# is refused before any pixel is decoded, and so is a resize that would produce more pixels.
MAX_PIXELS = 89_478_485


class ImageReadError(ValueError):
    """An image could not be decoded; the message names the file, the reason and what to do."""

    def __init__(self, path: Path | str, reason: str, advice: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"Cannot read image {display_path(self.path)}: {reason}. {advice}")


def _read_error(path: Path, exc: Exception) -> ImageReadError:
    """Turn whatever Pillow raised into an ImageReadError with advice that fits the cause."""
    if isinstance(exc, ImageReadError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return ImageReadError(path, "no such file",
                              "Check the path (or COURSE_IMAGES) and the file name.")
    if isinstance(exc, IsADirectoryError):
        return ImageReadError(path, "it is a folder, not a file",
                              "Pass the image files inside it.")
    if isinstance(exc, PermissionError):
        return ImageReadError(path, "permission denied",
                              "Make the file readable (chmod) or copy it.")
    if isinstance(exc, UnidentifiedImageError):
        return ImageReadError(
            path, "not an image format Pillow recognises (corrupt, or another kind of file with "
            "an image suffix)",
            "Open it in an image viewer; replace the file or remove it from the folder.")
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return ImageReadError(path, f"too many pixels ({exc})",
                              "Downscale the image before classifying it.")
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "truncated" in detail.lower():
        return ImageReadError(
            path, f"the file is incomplete ({detail})",
            "Copy or download it again; the transfer was cut short.")
    return ImageReadError(
        path, f"the image data is damaged ({type(exc).__name__}: {detail})",
        "Replace it with an intact copy, or remove it from the folder.")


def check_pixels(width: int, height: int, path: Path | str, max_pixels: int = MAX_PIXELS) -> None:
    """Raise :class:`ImageReadError` if a ``width`` x ``height`` image exceeds ``max_pixels``.

    Called on the header's size, before decoding: a small file can declare an enormous image
    (a "decompression bomb"), and decoding it would exhaust the memory.
    """
    if width * height > max_pixels:
        raise ImageReadError(
            path, f"too many pixels ({width}x{height} = {width * height:,}; "
            f"the limit is {max_pixels:,})", "Downscale the image before classifying it.")


def to_rgb(image: Image.Image, background: tuple[int, int, int] = BACKGROUND) -> Image.Image:
    """Return ``image`` in mode RGB, whatever its mode (notebook 04 shows why).

    Transparent pixels (RGBA, LA, PA, or a palette/grey image with a transparent
    colour) are composited onto ``background``, white by default, as a browser
    shows them on a white page. 16-bit modes (``I;16``, ``I``: how Pillow opens
    16-bit PNG and TIFF files) are scaled from 0-65535 to 0-255 rather than
    clipped; float images (``F``) are taken as values in 0.0-1.0. CMYK and the
    other modes use Pillow's own conversion.
    """
    if image.mode == "RGB":
        return image
    if image.mode in SIXTEEN_BIT_MODES or image.mode == "F":
        scale = 255.0 / 65535.0 if image.mode in SIXTEEN_BIT_MODES else 255.0
        values = np.asarray(image, dtype=np.float64) * scale
        grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")  # 2-D uint8 gives mode L
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image.convert("RGB")


def load_rgb(
    path: Path | str,
    max_pixels: int = MAX_PIXELS,
    *,
    background: tuple[int, int, int] = BACKGROUND,
) -> Image.Image:
    """Decode the image at ``path`` fully, apply its EXIF orientation and return it in mode RGB.

    The decode step of notebook 04. Transparency is composited onto ``background``, white by
    default (see :func:`to_rgb`). Any file that cannot be decoded (missing, empty, corrupt,
    truncated, not an image, more than ``max_pixels`` pixels) raises :class:`ImageReadError`,
    whose message names the file and what to do.
    """
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size == 0:
            raise ImageReadError(path, "the file is empty (0 bytes)",
                                 "Copy or download it again, or remove it from the folder.")
        with path.open("rb") as stream:
            return _decode(stream, path, max_pixels, background)
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, EOFError...
        raise _read_error(path, exc) from exc


def decode_rgb(
    data: bytes, name: str = "upload", max_pixels: int = MAX_PIXELS, *,
    background: tuple[int, int, int] = BACKGROUND,
) -> Image.Image:
    """Like :func:`load_rgb` for an image held in memory (an upload); messages use ``name``."""
    try:
        if not data:
            raise ImageReadError(name, "the file is empty (0 bytes)", "Send the image's bytes.")
        return _decode(io.BytesIO(data), Path(name), max_pixels, background)
    except Exception as exc:
        raise _read_error(Path(name), exc) from exc


def _decode(
    stream: BinaryIO, path: Path, max_pixels: int, background: tuple[int, int, int] = BACKGROUND
) -> Image.Image:
    """Check the size in the header, decode every pixel, turn the image upright, convert to RGB."""
    with Image.open(stream) as opened:
        check_pixels(opened.width, opened.height, path, max_pixels)
        opened.load()  # decode every byte now, so a truncated file fails here
        upright = ImageOps.exif_transpose(opened)
        return to_rgb(upright, background)


def resized_short_side_size(width: int, height: int, size: int = 256) -> tuple[int, int]:
    """Return the (width, height) after scaling the short side to ``size``, keeping the shape.

    The long side is truncated to an integer, as torchvision does (taught in notebook 04).
    """
    if width <= height:
        return size, int(size * height / width)
    return int(size * width / height), size


def resize_short_side(image: Image.Image, size: int = 256) -> Image.Image:
    """Scale ``image`` so that its short side is ``size`` pixels, with Pillow's bilinear filter.

    The resize step of notebook 04: same output size and filter as torchvision's
    ``Resize(size)`` on a PIL image (Pillow's bilinear filter antialiases when it shrinks).
    """
    new_size = resized_short_side_size(*image.size, size=size)
    if new_size[0] * new_size[1] > MAX_PIXELS:
        raise ValueError(
            f"A {image.width}x{image.height} image would become {new_size[0]}x{new_size[1]} "
            "pixels: its aspect ratio is too extreme to resize safely. "
            "Crop it to the part you want classified.")
    if new_size == image.size:
        return image
    return image.resize(new_size, Image.Resampling.BILINEAR)


def center_crop_box(width: int, height: int, size: int = 224) -> tuple[int, int, int, int]:
    """Return the (left, top, right, bottom) box of the central ``size`` x ``size`` square.

    Offsets use Python's ``round`` like torchvision's ``CenterCrop`` (notebook 04); where the
    image is smaller than the crop they are negative, centring the image in the box.
    """
    left = -((size - width) // 2) if size > width else int(round((width - size) / 2.0))
    top = -((size - height) // 2) if size > height else int(round((height - size) / 2.0))
    return left, top, left + size, top + size


def center_crop(image: Image.Image, size: int = 224) -> Image.Image:
    """Cut the central ``size`` x ``size`` square from ``image``, as torchvision's ``CenterCrop``.

    The crop step of notebook 04. An image smaller than the crop is padded with black, centred
    the same way torchvision pads it.
    """
    return image.crop(center_crop_box(*image.size, size))


def to_normalized_chw(image: Image.Image) -> np.ndarray:
    """Return an RGB image as a float32 (3, H, W) array, scaled to [0, 1] and normalised.

    The tensor step of notebook 04: the same float32 operations, in the same order, as
    torchvision's ``pil_to_tensor``, ``convert_image_dtype`` and ``normalize``.
    """
    if image.mode != "RGB":
        raise ValueError(
            f"Expected an RGB image, got mode {image.mode!r}: "
            "convert it with to_rgb() or read it with load_rgb()."
        )
    # One copy (uint8 HWC -> float32 CHW), then in-place arithmetic in the order torchvision uses.
    chw = np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1), dtype=np.float32)
    chw /= np.float32(255.0)
    chw -= IMAGENET_MEAN[:, np.newaxis, np.newaxis]
    chw /= IMAGENET_STD[:, np.newaxis, np.newaxis]
    return chw


def preprocess(image: Image.Image, resize: int = 256, crop: int = 224) -> np.ndarray:
    """Resize the short side, centre-crop and normalise an RGB image: float32 (3, crop, crop).

    The steps of notebook 04 composed; the notebook proves it equal to torchvision's transforms.
    """
    return to_normalized_chw(center_crop(resize_short_side(image, resize), crop))


def load_batch(
    paths: Iterable[Path | str], resize: int = 256, crop: int = 224
) -> tuple[np.ndarray, list[Path], list[tuple[Path, str]]]:
    """Read and preprocess every readable image into one float32 (N, 3, crop, crop) batch.

    Returns the batch, the paths of the images in it (in order), and the skipped
    files with the reason; one unreadable file never stops the others.
    """
    arrays, used, skipped = [], [], []
    for path in map(Path, paths):
        try:
            arrays.append(preprocess(load_rgb(path), resize, crop))
        except ImageReadError as exc:
            skipped.append((path, str(exc)))
            continue
        except ValueError as exc:  # decoded, but cannot be resized safely
            skipped.append((path, f"Cannot preprocess image {display_path(path)}: {exc}"))
            continue
        used.append(path)
    batch = np.stack(arrays) if arrays else np.empty((0, 3, crop, crop), dtype=np.float32)
    return batch, used, skipped
