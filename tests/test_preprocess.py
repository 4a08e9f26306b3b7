import io

import numpy as np
import pytest
from PIL import Image
from torchvision.transforms import functional as TF

from course_utils.paths import data_dir, list_images
from course_utils.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageReadError,
    center_crop,
    center_crop_box,
    decode_rgb,
    load_batch,
    load_rgb,
    preprocess,
    resize_short_side,
    resized_short_side_size,
    to_normalized_chw,
    to_rgb,
)
from course_utils.weights import torchvision_weights

SAMPLES = list_images(data_dir() / "images")
EXIF_ORIENTATION = 0x0112


def torchvision_reference(image: Image.Image) -> np.ndarray:
    return torchvision_weights("resnet18").transforms()(image).numpy()


def gradient_image(width: int, height: int) -> Image.Image:
    """A smooth RGB test image with some structure in every channel."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256], axis=-1)
    return Image.fromarray(pixels.astype(np.uint8), mode="RGB")


def test_sample_folder_has_images():
    assert len(SAMPLES) >= 10


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_matches_torchvision_transforms_on_every_sample(path):
    image = load_rgb(path)
    ours = preprocess(image)
    assert ours.shape == (3, 224, 224) and ours.dtype == np.float32
    # Bit-identical, as notebook 04 asserts: the same Pillow resize, then the same correctly
    # rounded float32 operations (divide, subtract, divide) in the same order; no sums.
    assert np.array_equal(ours, torchvision_reference(image))


@pytest.mark.parametrize("size", [(1, 1), (3, 500), (500, 3), (225, 225), (257, 259), (640, 427)])
def test_matches_torchvision_on_tiny_and_odd_sizes(size):
    image = gradient_image(*size)
    assert np.array_equal(preprocess(image), torchvision_reference(image))


@pytest.mark.parametrize("size", [(5, 7), (223, 300), (300, 223), (230, 231), (257, 259), (100, 224)])
def test_center_crop_rounds_and_pads_like_torchvision(size):
    image = gradient_image(*size)
    ours = center_crop(image, 224)
    assert ours.size == (224, 224)
    assert np.array_equal(np.asarray(ours), np.asarray(TF.center_crop(image, [224])))


def test_center_crop_box_centres_with_rounding_and_goes_negative_for_small_images():
    assert center_crop_box(300, 256, 224) == (38, 16, 262, 240)
    assert center_crop_box(225, 224, 224) == (0, 0, 224, 224)  # round(0.5) == 0, as in torchvision
    assert center_crop_box(100, 224, 224) == (-62, 0, 162, 224)


@pytest.mark.parametrize("size", [(640, 427), (427, 640), (300, 300), (3, 500), (1001, 999)])
def test_resize_short_side_like_torchvision(size):
    image = gradient_image(*size)
    ours = resize_short_side(image, 256)
    reference = TF.resize(image, [256], interpolation=TF.InterpolationMode.BILINEAR)
    assert ours.size == reference.size and min(ours.size) == 256
    assert np.array_equal(np.asarray(ours), np.asarray(reference))


def test_resized_short_side_size_truncates_the_long_side():
    assert resized_short_side_size(640, 427) == (383, 256)
    assert resized_short_side_size(427, 640) == (256, 383)
    assert resized_short_side_size(3, 500) == (256, 42666)


def test_very_large_image(tmp_path):
    path = tmp_path / "large.jpg"
    gradient_image(6000, 4000).save(path, quality=90)
    image = load_rgb(path)
    assert image.size == (6000, 4000)
    assert np.abs(preprocess(image) - torchvision_reference(image)).max() <= 1e-5


def test_to_normalized_chw_values_and_layout():
    image = Image.new("RGB", (2, 1), (255, 0, 128))
    array = to_normalized_chw(image)
    assert array.shape == (3, 1, 2) and array.dtype == np.float32 and array.flags["C_CONTIGUOUS"]
    expected = (np.array([255, 0, 128], np.float32) / 255 - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(array[:, 0, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(array[:, 0, 1], expected, rtol=1e-6)


def test_to_normalized_chw_refuses_other_modes():
    with pytest.raises(ValueError, match="mode 'L'.*to_rgb"):
        to_normalized_chw(Image.new("L", (4, 4)))


def save(image: Image.Image, path, **options):
    image.save(path, **options)
    return path


def palette_image(transparent: bool) -> Image.Image:
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.putpixel((0, 0), 0)
    if transparent:
        image.info["transparency"] = 0
    return image


@pytest.mark.parametrize(
    ("mode", "build", "suffix", "first_pixel", "other_pixel"),
    [
        ("L", lambda: Image.new("L", (4, 4), 100), ".png", (100, 100, 100), (100, 100, 100)),
        ("LA", lambda: Image.new("LA", (4, 4), (100, 0)), ".png", (255, 255, 255), (255, 255, 255)),
        ("P", lambda: palette_image(False), ".png", (0, 0, 0), (255, 0, 0)),
        ("P+transparency", lambda: palette_image(True), ".png", (255, 255, 255), (255, 0, 0)),
        ("RGBA", lambda: Image.new("RGBA", (4, 4), (0, 0, 255, 128)), ".png", (127, 127, 255),
         (127, 127, 255)),
        ("CMYK", lambda: Image.new("CMYK", (4, 4), (0, 255, 255, 0)), ".tif", (255, 0, 0), (255, 0, 0)),
        ("I;16", lambda: Image.fromarray(np.full((4, 4), 32896, np.uint16)), ".png", (128, 128, 128),
         (128, 128, 128)),
    ],
)
def test_every_mode_becomes_rgb(tmp_path, mode, build, suffix, first_pixel, other_pixel):
    path = save(build(), tmp_path / f"image{suffix}")
    image = load_rgb(path)
    assert image.mode == "RGB" and image.size == (4, 4)
    assert image.getpixel((0, 0)) == first_pixel
    assert image.getpixel((3, 3)) == other_pixel
    assert preprocess(image, 4, 4).shape == (3, 4, 4)


def test_sixteen_bit_and_float_modes_are_scaled_not_clipped():
    ramp16 = Image.fromarray(np.array([[0, 257, 65535]], np.uint16))
    assert [ramp16.convert("I").mode, ramp16.mode] == ["I", "I;16"]
    for image in (ramp16, ramp16.convert("I")):
        assert list(np.asarray(to_rgb(image))[0, :, 0]) == [0, 1, 255]
    floats = Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32))
    assert list(np.asarray(to_rgb(floats))[0, :, 0]) == [0, 128, 255]


def test_transparency_uses_the_background_given():
    image = Image.new("RGBA", (1, 1), (0, 0, 0, 0))
    assert to_rgb(image).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(image, background=(0, 128, 0)).getpixel((0, 0)) == (0, 128, 0)


def test_load_rgb_and_decode_rgb_take_the_background(tmp_path):
    path = tmp_path / "clear.png"
    Image.new("RGBA", (2, 1), (10, 20, 30, 0)).save(path)
    assert load_rgb(path).getpixel((0, 0)) == (255, 255, 255)
    assert load_rgb(path, background=(0, 0, 0)).getpixel((0, 0)) == (0, 0, 0)
    data = path.read_bytes()
    assert decode_rgb(data, "clear.png", background=(0, 0, 255)).getpixel((1, 0)) == (0, 0, 255)


@pytest.mark.parametrize("function", [load_rgb, to_rgb, resized_short_side_size, resize_short_side,
                                      center_crop_box, center_crop, to_normalized_chw, preprocess])
def test_the_functions_notebook_04_prints_name_it(function):
    assert "notebook 04" in function.__doc__


def test_rgb_image_is_returned_unchanged():
    image = gradient_image(3, 2)
    assert to_rgb(image) is image


def test_exif_orientation_is_applied(tmp_path):
    stored = Image.new("RGB", (40, 20), (255, 0, 0))
    stored.paste((0, 0, 255), (20, 0, 40, 20))  # left half red, right half blue
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # "rotate 90 degrees clockwise to display"
    path = save(stored, tmp_path / "rotated.jpg", exif=exif, quality=95)
    with Image.open(path) as raw:
        assert raw.size == (40, 20) and raw.getexif()[EXIF_ORIENTATION] == 6
    upright = load_rgb(path)
    assert upright.size == (20, 40)
    top, bottom = upright.getpixel((10, 5)), upright.getpixel((10, 35))
    assert top[0] > 200 and top[2] < 60  # red went to the top
    assert bottom[2] > 200 and bottom[0] < 60


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    gradient_image(320, 240).save(buffer, format="JPEG")
    return buffer.getvalue()


def damaged_png_bytes() -> bytes:
    buffer = io.BytesIO()
    gradient_image(320, 240).save(buffer, format="PNG")
    data = buffer.getvalue()
    return data[:200] + bytes(b ^ 0xFF for b in data[200:400]) + data[400:]


def write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("corrupt.png", bytes(range(256)) * 4, "not an image format"),
        ("truncated.jpg", jpeg_bytes()[: len(jpeg_bytes()) // 2], "incomplete"),
        ("cut_in_header.jpg", jpeg_bytes()[:300], "incomplete"),
        ("damaged.png", damaged_png_bytes(), "damaged"),
        ("notes.jpg", "this is a text file, not a photo\n".encode(), "not an image format"),
        ("empty.jpg", b"", "the file is empty"),
    ],
)
def test_unreadable_files_raise_a_clear_error(tmp_path, name, content, reason):
    path = write(tmp_path / name, content)
    with pytest.raises(ImageReadError, match=reason) as info:
        load_rgb(path)
    message = str(info.value)
    assert name in message and info.value.path == path
    assert str(tmp_path) not in message  # shown through display_path, no machine path


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageReadError, match="missing.jpg: no such file. Check the path"):
        load_rgb(tmp_path / "missing.jpg")
    with pytest.raises(ImageReadError, match="folder"):
        load_rgb(tmp_path)


def test_image_read_error_is_a_value_error():
    assert issubclass(ImageReadError, ValueError)


def test_load_batch_skips_bad_files_and_keeps_order(tmp_path):
    good = [save(gradient_image(300, 200), tmp_path / "a.png"),
            save(gradient_image(90, 120), tmp_path / "c.jpg")]
    bad = [write(tmp_path / "b.jpg", b"plain text"), tmp_path / "gone.png"]
    batch, used, skipped = load_batch([good[0], bad[0], good[1], bad[1]])
    assert batch.shape == (2, 3, 224, 224) and batch.dtype == np.float32
    assert used == good
    assert [path for path, _ in skipped] == bad
    assert "b.jpg" in skipped[0][1] and "gone.png" in skipped[1][1]
    np.testing.assert_array_equal(batch[1], preprocess(load_rgb(good[1])))


def test_load_batch_of_nothing_readable(tmp_path):
    batch, used, skipped = load_batch([write(tmp_path / "x.jpg", b"no")], crop=32)
    assert batch.shape == (0, 3, 32, 32) and used == [] and len(skipped) == 1
