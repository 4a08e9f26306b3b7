import pandas as pd
import pytest

from course_utils.labels import label, labels_file, load_labels


def test_label_file_has_1000_unique_names_in_both_languages():
    raw = pd.read_csv(labels_file(), keep_default_na=False, encoding="utf-8")
    assert list(raw.columns) == ["id", "english", "chinese"]
    assert raw["id"].tolist() == list(range(1000))
    for column in ("english", "chinese"):
        names = raw[column]
        assert (names.str.strip() != "").all(), f"empty {column} name"
        assert (names == names.str.strip()).all(), f"{column} name with surrounding spaces"
        assert names.is_unique, f"duplicated {column} names"
    assert raw["chinese"].str.contains(r"[\u3400-\u9fff]").all()


def test_english_names_match_torchvision():
    from torchvision.models import ResNet18_Weights

    assert load_labels()["english"].tolist() == ResNet18_Weights.IMAGENET1K_V1.meta["categories"]


def test_known_labels():
    assert label(281) == "tabby"
    assert label(281, "chinese") == "虎斑猫"
    assert label(673, "chinese") == "鼠标"
    with pytest.raises(ValueError, match="language"):
        label(1, "french")


def test_a_broken_label_file_is_reported_by_name(tmp_path):
    broken = tmp_path / "labels.csv"
    broken.write_text("id,english,chinese\n0,tench,丁鲷\n1,goldfish,\n", encoding="utf-8")
    with pytest.raises(ValueError, match="labels.csv"):
        load_labels(broken)
