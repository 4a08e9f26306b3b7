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


@pytest.mark.parametrize("class_id, english, chinese", [
    (282, "tiger cat", "虎纹家猫"),  # a striped house cat; 虎猫 is a wild cat
    (589, "hand blower", "吹风机"),  # a hair dryer, not a wall-mounted hand dryer
    (494, "chime", "管钟"),  # tuned (tubular) bells struck with a hammer, not a wind chime
    (156, "Blenheim spaniel", "布伦海姆查理王小猎犬"),  # the Blenheim King Charles spaniel
    (38, "banded gecko", "带纹睑虎"),  # an eyelid gecko (Coleonyx)
    (827, "stove", "火炉"),
])
def test_corrected_chinese_names(class_id, english, chinese):
    assert label(class_id) == english
    assert label(class_id, "chinese") == chinese


def test_a_broken_label_file_is_reported_by_name(tmp_path):
    broken = tmp_path / "labels.csv"
    broken.write_text("id,english,chinese\n0,tench,丁鲷\n1,goldfish,\n", encoding="utf-8")
    with pytest.raises(ValueError, match="labels.csv"):
        load_labels(broken)
