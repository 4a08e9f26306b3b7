"""What a deployed model must carry with it: preprocessing, labels and weights, in ``metadata_props``.

An ``.onnx`` file holds the graph and the weights, but not the preprocessing the weights expect
nor the names of the classes. A service, a web page and a notebook that each keep their own copy
of those constants drift apart. :func:`course_utils.export.export_onnx` therefore writes them into
the file's ``metadata_props`` (string key/value pairs that every ONNX runtime preserves and
exposes, in Python as ``session.get_modelmeta().custom_metadata_map``), and every consumer reads
them back with :func:`read_deployment_info`.

This module imports no PyTorch, so a deployed service can use it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from course_utils.paths import display_path
from course_utils.preprocess import BACKGROUND, IMAGENET_MEAN, IMAGENET_STD

PREFIX = "course."
KEYS = ("model", "weights", "weights_standin", "preprocess", "labels", "labels_source")
RESIZE, CROP = 256, 224


def preprocessing_spec(resize: int = RESIZE, crop: int = CROP) -> dict[str, object]:
    """Return the preprocessing of :func:`course_utils.preprocess.preprocess` as plain data."""
    return {
        "decode": "full decode, EXIF orientation applied, no colour-space conversion",
        "mode": "RGB; transparency composited onto the background colour",
        "background": list(BACKGROUND),
        "resize_short_side": resize,
        "resize_filter": "Pillow BILINEAR (antialiased when shrinking)",
        "center_crop": crop,
        "scale": 1 / 255,
        "mean": [round(float(v), 6) for v in IMAGENET_MEAN],
        "std": [round(float(v), 6) for v in IMAGENET_STD],
        "layout": "NCHW",
        "dtype": "float32",
    }


def deployment_metadata(model: str, weights: str, is_standin: bool) -> dict[str, str]:
    """Return the ``metadata_props`` entries for a classifier: model, weights, preprocessing, labels."""
    from course_utils.labels import labels_file, load_labels  # pandas: export time only

    table = load_labels()
    path = labels_file()
    return {
        f"{PREFIX}model": model,
        f"{PREFIX}weights": weights,
        f"{PREFIX}weights_standin": json.dumps(bool(is_standin)),
        f"{PREFIX}preprocess": json.dumps(preprocessing_spec()),
        f"{PREFIX}labels": json.dumps(
            [[en, zh] for en, zh in zip(table["english"], table["chinese"])], ensure_ascii=False),
        f"{PREFIX}labels_source": (f"{display_path(path)} "
                                   f"(sha256 {hashlib.sha256(path.read_bytes()).hexdigest()[:16]})"),
    }


@dataclass(frozen=True)
class DeploymentInfo:
    """The metadata of an exported classifier, read back from its file or session."""

    model: str
    weights: str
    is_standin: bool
    preprocess: dict[str, object]
    labels: tuple[tuple[str, str], ...]
    labels_source: str

    def label(self, class_id: int, language: str = "english") -> str:
        """Return the name of ``class_id`` in ``"english"`` or ``"chinese"``."""
        if language not in ("english", "chinese"):
            raise ValueError(f"language must be 'english' or 'chinese', not {language!r}")
        return self.labels[int(class_id)][0 if language == "english" else 1]


def parse_metadata(props: Mapping[str, str], source: str = "the model") -> DeploymentInfo:
    """Build a :class:`DeploymentInfo` from key/value pairs; say which keys are missing."""
    missing = [f"{PREFIX}{key}" for key in KEYS if f"{PREFIX}{key}" not in props]
    if missing:
        raise ValueError(
            f"{source} lacks the deployment metadata {missing}: export it with "
            "course_utils.export.export_onnx(loaded_model, ...), which writes it.")
    return DeploymentInfo(
        model=props[f"{PREFIX}model"],
        weights=props[f"{PREFIX}weights"],
        is_standin=json.loads(props[f"{PREFIX}weights_standin"]),
        preprocess=json.loads(props[f"{PREFIX}preprocess"]),
        labels=tuple((en, zh) for en, zh in json.loads(props[f"{PREFIX}labels"])),
        labels_source=props[f"{PREFIX}labels_source"],
    )


def read_deployment_info(path: Path | str) -> DeploymentInfo:
    """Read the deployment metadata from an ``.onnx`` file without loading its weights."""
    import onnx  # here, so that a service reading a session's metadata needs no onnx package

    proto = onnx.load(str(path), load_external_data=False)
    return parse_metadata({p.key: p.value for p in proto.metadata_props}, display_path(path))
