"""The 1000 ImageNet-1k class names in English and Chinese."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from course_utils.paths import data_dir, display_path

NUM_CLASSES = 1000


def labels_file() -> Path:
    """Return the path of ``data/imagenet_classes.csv`` (columns ``id,english,chinese``)."""
    return data_dir() / "imagenet_classes.csv"


@lru_cache(maxsize=4)
def load_labels(path: Path | None = None) -> pd.DataFrame:
    """Return the label table indexed by class id, after checking it is complete."""
    path = Path(path) if path is not None else labels_file()
    table = pd.read_csv(path, dtype={"english": str, "chinese": str}, keep_default_na=False, encoding="utf-8")
    problems = []
    if list(table.columns) != ["id", "english", "chinese"]:
        problems.append(f"columns are {list(table.columns)}, expected ['id', 'english', 'chinese']")
    elif table["id"].tolist() != list(range(NUM_CLASSES)):
        problems.append(f"ids must be 0..{NUM_CLASSES - 1} in order")
    else:
        for column in ("english", "chinese"):
            names = table[column].str.strip()
            if (names == "").any():
                problems.append(f"empty {column} name for ids {table.loc[names == '', 'id'].tolist()[:5]}")
            if names.duplicated().any():
                problems.append(f"duplicated {column} names: {sorted(set(names[names.duplicated()]))[:5]}")
    if problems:
        raise ValueError(f"Label file {display_path(path)} is invalid: " + "; ".join(problems))
    return table.set_index("id")


def label(class_id: int, language: str = "english") -> str:
    """Return the name of ``class_id`` in ``language`` (``"english"`` or ``"chinese"``)."""
    if language not in ("english", "chinese"):
        raise ValueError(f"language must be 'english' or 'chinese', not {language!r}")
    return str(load_labels().at[int(class_id), language])
