from pathlib import Path

import pytest

from course_utils.config import quick_mode, setting
from course_utils.paths import display_path, images_dir, list_images, repo_root


def test_setting_converts_to_the_type_of_the_default(monkeypatch):
    monkeypatch.setenv("COURSE_TEST_INT", "7")
    monkeypatch.setenv("COURSE_TEST_BOOL", "yes")
    assert setting("COURSE_TEST_INT", 3) == 7
    assert setting("COURSE_TEST_BOOL", False) is True
    assert setting("COURSE_TEST_UNSET", 2.5) == 2.5


def test_setting_rejects_a_bad_value_with_its_name(monkeypatch):
    monkeypatch.setenv("COURSE_REPEATS", "many")
    with pytest.raises(ValueError, match="COURSE_REPEATS"):
        setting("COURSE_REPEATS", 10)


def test_quick_mode_follows_the_environment(monkeypatch):
    monkeypatch.setenv("COURSE_QUICK", "1")
    assert quick_mode()
    monkeypatch.setenv("COURSE_QUICK", "0")
    assert not quick_mode()


def test_images_dir_defaults_to_the_samples_and_can_be_redirected(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_IMAGES", raising=False)
    assert images_dir() == repo_root() / "data" / "images"
    monkeypatch.setenv("COURSE_IMAGES", str(tmp_path))
    assert images_dir() == tmp_path
    monkeypatch.setenv("COURSE_IMAGES", "results/my photos")  # relative: from the course's root
    assert images_dir() == repo_root() / "results" / "my photos"


def test_list_images_keeps_image_suffixes_only(tmp_path):
    for name in ("b.JPG", "a.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_images(tmp_path)] == ["a.png", "b.JPG"]
    with pytest.raises(FileNotFoundError, match="COURSE_IMAGES"):
        list_images(tmp_path / "missing")


def test_display_path_is_relative_inside_the_course():
    assert display_path(repo_root() / "data" / "images") == "data/images"
    assert display_path(Path("/somewhere/else/model.onnx")) == "model.onnx"
