"""Every folder-reading helper, driven with a folder of the files learners really have."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.imagefolder import inspect_image, scan_folder
from course_utils.inference import predictions_table
from course_utils.paths import list_images
from course_utils.preprocess import ImageReadError, decode_rgb, load_batch, load_rgb
from hostile_folder import EXPECTED, build


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return build(tmp_path_factory.mktemp("images") / "hostile")


def expected(kind: str) -> set[str]:
    return {name for name, what in EXPECTED.items() if what == kind}


def test_scan_sorts_every_file_into_read_skipped_or_ignored(hostile):
    scan = scan_folder(hostile)
    assert {p.name for p in scan.paths} == expected("read")
    assert {p.name for p, _ in scan.skipped} == expected("skip")
    assert {p.name for p in scan.ignored} == expected("ignore")
    report = scan.report()
    for name in expected("skip"):
        assert report.count(repr(name)) == 1  # each bad file reported once, by name
    assert scan.table()["mode in the file"].tolist().count("I;16") == 1


@pytest.mark.parametrize("name, reason", [
    ("empty.jpg", "empty"), ("notes.jpg", "not an image format"), ("truncated.jpg", "incomplete"),
    ("corrupt.png", "damaged"), ("bomb.png", "too many pixels"), ("panorama_1x4000.png", "aspect ratio"),
    ("album.jpg", "folder"),
])
def test_each_bad_file_gets_its_reason_and_advice(hostile, name, reason):
    with pytest.raises(ImageReadError, match=reason) as caught:
        inspect_image(hostile / name)
    assert name in str(caught.value) and str(caught.value).rstrip().endswith(".")


def test_list_images_names_only_candidates(hostile):
    names = {p.name for p in list_images(hostile)}
    assert names == expected("read") | expected("skip")


def test_load_batch_survives_the_whole_folder(hostile):
    batch, used, skipped = load_batch(list_images(hostile))
    assert batch.shape == (len(expected("read")), 3, 224, 224) and np.isfinite(batch).all()
    assert {p.name for p, _ in skipped} == expected("skip")


def test_predictions_table_never_reopens_a_bad_file(hostile):
    paths = sorted(hostile / name for name in expected("read") | {"empty.jpg"})
    table = predictions_table(paths, np.full((len(paths), 1000), 1e-3))
    assert table.loc[table["file"].str.endswith("empty.jpg"), "size"].item() == "unreadable"


def test_decode_rgb_for_uploads(hostile):
    assert decode_rgb((hostile / "tabby_cat.jpg").read_bytes()).mode == "RGB"
    with pytest.raises(ImageReadError, match="empty"):
        decode_rgb(b"", "upload.jpg")
    with pytest.raises(ImageReadError, match="too many pixels"):
        load_rgb(hostile / "tabby_cat.jpg", max_pixels=1000)


def test_missing_folder_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="COURSE_IMAGES"):
        scan_folder(tmp_path / "nowhere")
