"""Input checks and post-processing for ONNX Runtime classifiers in NumPy (no torch when deployed).

Taught in notebook 04 (``04_onnxruntime_inference.ipynb``), which prints ``softmax`` and ``top_k``.
The deployed code needs only :func:`check_input`, :func:`softmax` and :func:`top_k`, which import
neither torch nor pandas; the tables that notebooks show import pandas when they are called.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from PIL import Image

from course_utils.paths import display_path

if TYPE_CHECKING:
    import pandas as pd

    from course_utils.imagefolder import ImageRecord

# The header over every prediction table made with stand-in weights, and the figure's title.
STANDIN_WARNING = "UNTRAINED stand-in model: these labels are not about the photo"
REAL_WEIGHTS_HINT = ("For real predictions, run `make weights` once (online), "
                     "then run the notebook again.")

# ONNX Runtime's element type names and the NumPy dtypes that feed them.
ORT_DTYPES = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(double)": np.dtype(np.float64),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(int8)": np.dtype(np.int8),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(bool)": np.dtype(np.bool_),
}


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Return probabilities from ``logits`` along ``axis`` (taught in notebook 04).

    The largest logit is subtracted first, so ``exp`` never overflows even for
    logits in the thousands; float32 input stays float32.
    """
    logits = np.asarray(logits)
    logits = logits.astype(np.result_type(logits.dtype, np.float32), copy=False)
    exps = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return exps / exps.sum(axis=axis, keepdims=True)


def top_k(probs: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Return the indices and values of the ``k`` largest entries of the last axis, largest first.

    Taught in notebook 04. Ties keep the lower class index first, so the result is deterministic.
    """
    probs = np.asarray(probs)
    if not 1 <= k <= probs.shape[-1]:
        raise ValueError(
            f"k must be between 1 and {probs.shape[-1]} (the number of classes), got {k}.")
    indices = np.argsort(-probs, axis=-1, kind="stable")[..., :k]
    return indices, np.take_along_axis(probs, indices, axis=-1)


def ort_error_summary(exc: BaseException) -> str:
    """Return ONNX Runtime's error message on one line, without its error-code prefix and closing advice."""
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : ", "", str(exc).strip())
    text = text.replace("Please fix either the inputs/outputs or the model.", "")
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def _format_shape(shape: Sequence[Any]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _layout_hint(expected: Sequence[Any], shape: tuple[int, ...]) -> str:
    """Explain the most likely cause of a shape mismatch of an image batch."""
    if len(expected) == 4 and expected[1] == 3 and shape[1] != 3 and shape[-1] == 3:
        return ("The array looks channels-last (N, H, W, C); the model wants (N, C, H, W): "
                "use array.transpose(0, 3, 1, 2).")
    if len(expected) == 4 and isinstance(expected[1], int) and shape[1] != expected[1]:
        return (f"The model wants {expected[1]} colour channels (N, C, H, W) and got {shape[1]}: "
                "convert the image to RGB first (course_utils.preprocess.to_rgb).")
    return ("This file was exported with a fixed input size: resize and crop the image to that size, "
            "or export the model with dynamic height and width.")


def check_input(session: Any, array: Any, name: str | None = None) -> np.ndarray:
    """Return ``array`` if it fits the session's input ``name``, else raise a ValueError that says why.

    The expected element type and shape are read from ``session.get_inputs()``;
    named (dynamic) dimensions accept any size. ``name`` may be left out when
    the model has a single input.
    """
    inputs = {node.name: node for node in session.get_inputs()}
    if name is None:
        if len(inputs) != 1:
            raise ValueError(f"The model has inputs {list(inputs)}: say which one with name=...")
        name = next(iter(inputs))
    if name not in inputs:
        raise ValueError(f"The model has no input {name!r}; its inputs are {list(inputs)}.")
    node = inputs[name]
    expected_shape = list(node.shape)
    wanted = (f"Input {name!r} expects a {node.type} array (NumPy {ORT_DTYPES.get(node.type, '?')}) "
              f"of shape {_format_shape(expected_shape)}")
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{wanted}; got a {type(array).__name__}. Pass a NumPy array (np.asarray).")
    got = f"got {array.dtype} of shape {list(array.shape)}"
    dtype = ORT_DTYPES.get(node.type)
    if dtype is not None and array.dtype != dtype:
        raise ValueError(f"{wanted}; {got}. Convert it with array.astype(np.{dtype.name}).")
    if array.ndim != len(expected_shape):
        hint = f"Give it {len(expected_shape)} dimensions."
        if array.ndim == len(expected_shape) - 1:
            hint = "Add the batch axis with array[np.newaxis]."
            if len(expected_shape) == 4 and expected_shape[1] == 3 and array.shape[-1] == 3:
                hint = "It looks like one (H, W, C) image: use array.transpose(2, 0, 1)[np.newaxis]."
        counts = f"{array.ndim} dimensions instead of {len(expected_shape)}"
        raise ValueError(f"{wanted}; {got} ({counts}). {hint}")
    wrong = [i for i, d in enumerate(expected_shape) if isinstance(d, int) and d != array.shape[i]]
    if wrong:
        axes = ", ".join(f"axis {i}: {array.shape[i]} instead of {expected_shape[i]}" for i in wrong)
        raise ValueError(f"{wanted}; {got} ({axes}). {_layout_hint(expected_shape, array.shape)}")
    return array


def top_k_table(probs: np.ndarray, k: int = 5, decimals: int = 4) -> pd.DataFrame:
    """Return the ``k`` most probable classes of one image with English and Chinese names."""
    import pandas as pd

    from course_utils.labels import label

    indices, values = top_k(np.asarray(probs).reshape(-1), k)
    return pd.DataFrame(
        {
            "class id": indices,
            "english": [label(i, "english") for i in indices],
            "chinese": [label(i, "chinese") for i in indices],
            "probability": np.round(values.astype(np.float64), decimals),
        },
        index=pd.RangeIndex(1, k + 1, name="rank"),
    )


def image_size(path: Path | str) -> str:
    """Return ``"WxH"`` as stored in the file's header (before any EXIF rotation), or ``"unreadable"``."""
    try:
        with Image.open(path) as image:
            return f"{image.width}x{image.height}"
    except (OSError, ValueError, Image.DecompressionBombError):  # reported by scan_folder, not here
        return "unreadable"


def top1_table(probs: np.ndarray, decimals: int = 4) -> pd.DataFrame:
    """Return one row per row of ``probs``: the top-1 class id, its two names, its probability."""
    import pandas as pd

    from course_utils.labels import label

    indices, values = top_k(np.asarray(probs), 1)
    return pd.DataFrame(
        {
            "class id": indices[:, 0],
            "top-1 (english)": [label(i, "english") for i in indices[:, 0]],
            "top-1 (chinese)": [label(i, "chinese") for i in indices[:, 0]],
            "probability": np.round(values[:, 0].astype(np.float64), decimals),
        }
    )


def predictions_table(
    paths: Sequence[Path | str | ImageRecord], probs: np.ndarray, decimals: int = 4
) -> pd.DataFrame:
    """Return one row per image: file, stored size, then the :func:`top1_table` columns.

    ``paths`` may hold the records of a folder scan
    (:attr:`course_utils.imagefolder.FolderScan.images`), whose sizes are known: then no file
    is opened again. For plain paths the size is read from each file's header.
    """
    import pandas as pd

    probs = np.asarray(probs)
    if len(paths) != len(probs):
        raise ValueError(f"Got {len(paths)} paths but {len(probs)} rows of probabilities.")
    files = [p.path if hasattr(p, "path") else p for p in paths]
    sizes = [p.size if hasattr(p, "path") else image_size(p) for p in paths]
    table = pd.DataFrame({"file": [display_path(p) for p in files], "size": sizes})
    return pd.concat([table, top1_table(probs, decimals)], axis=1)


def flag_untrained(table: pd.DataFrame, is_standin: bool) -> pd.DataFrame:
    """Return a prediction ``table`` to show: with stand-in weights, under a warning header.

    The header (:data:`STANDIN_WARNING`) spans every column, so that nobody reads an untrained
    model's labels as a statement about the image. With real weights the table is returned as
    it is.
    """
    if not is_standin:
        return table
    import pandas as pd

    flagged = table.copy()
    flagged.columns = pd.MultiIndex.from_product([[STANDIN_WARNING], table.columns])
    return flagged
