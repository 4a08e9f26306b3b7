"""Static int8 quantization with ONNX Runtime: calibration data, quantized files, measures (notebook 09).

Notebook 09 calls ``quant_pre_process`` and ``quantize_static`` itself; this module holds what is
not the lesson: the calibration folder and the reader that feeds it to ``quantize_static`` with the
course's own preprocessing, a split of the photographs that keeps calibration and evaluation
apart, variants of the quantization settings, the measures int8 is judged by (SQNR, cosine,
top-1 and top-5 agreement, top-1 margin), ONNX Runtime's per-operator profile as a table, the
results file and two figures.

int8 is judged by these measures, never by the float32 tolerance of :mod:`course_utils.tolerance`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageEnhance

from course_utils.paths import display_path, results_dir
from course_utils.preprocess import load_batch, load_rgb, preprocess

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

SAME_PHOTO = 0.8  # signature correlation above which two files count as one photograph
MANIFEST = "calibration_manifest.json"
CSV_COLUMNS = ("model", "variant", "batch", "threads", "calibration", "calibration_images",
               "median_ms", "p10_ms", "p90_ms", "size_mb", "sqnr_db", "cosine", "top1_agreement",
               "top5_agreement", "inputs")


# --- Photographs: which files show the same picture ---------------------------------------------

def photo_signature(path: Path | str, size: int = 32, centre: float = 0.6) -> np.ndarray:
    """Return a unit vector that describes the picture in ``path``, whatever its mode or encoding.

    The central part of the image (``centre`` of each side) in grey, shrunk to ``size`` x ``size``,
    reduced to its horizontal and vertical brightness steps. A re-encoded copy, a palette or a
    transparent version of the same photograph gives nearly the same vector (correlation near 1);
    different photographs give correlations near 0.
    """
    image = load_rgb(path).convert("L")
    width, height = image.size
    box_w, box_h = max(1, int(width * centre)), max(1, int(height * centre))
    left, top = (width - box_w) // 2, (height - box_h) // 2
    small = image.crop((left, top, left + box_w, top + box_h)).resize((size, size), Image.Resampling.BOX)
    pixels = np.asarray(small, dtype=np.float64)
    steps = np.concatenate([np.diff(pixels, axis=0).ravel(), np.diff(pixels, axis=1).ravel()])
    steps -= steps.mean()
    norm = np.linalg.norm(steps)
    return steps / norm if norm > 0 else steps


def group_photographs(paths: Sequence[Path | str], threshold: float = SAME_PHOTO) -> list[list[Path]]:
    """Group files that show the same photograph; groups keep the order of ``paths``."""
    signatures = [(Path(p), photo_signature(p)) for p in paths]
    groups: list[list[tuple[Path, np.ndarray]]] = []
    for path, signature in signatures:
        for group in groups:
            if any(float(signature @ other) >= threshold for _, other in group):
                group.append((path, signature))
                break
        else:
            groups.append([(path, signature)])
    return [[path for path, _ in group] for group in groups]


def split_photographs(paths: Sequence[Path | str]) -> tuple[list[Path], list[Path]]:
    """Split files into (calibration, evaluation) sources, every second photograph to each side.

    Copies of one photograph (another mode, another encoding) stay on the same side, so no
    picture is used for both calibration and evaluation.
    """
    groups = group_photographs(sorted(map(Path, paths), key=lambda p: p.name))
    if len(groups) < 2:
        raise ValueError(f"Need at least two different photographs to split, found {len(groups)}: "
                         "add images to the folder, or set COURSE_CALIBRATION to a folder of your own.")
    calibration = [path for group in groups[0::2] for path in group]
    evaluation = [path for group in groups[1::2] for path in group]
    return calibration, evaluation


def shared_photographs(first: Sequence[Path | str], second: Sequence[Path | str],
                       threshold: float = SAME_PHOTO) -> list[tuple[Path, Path]]:
    """Return every pair (a from ``first``, b from ``second``) that shows the same photograph."""
    left = [(Path(p), photo_signature(p)) for p in first]
    right = [(Path(p), photo_signature(p)) for p in second]
    return [(a, b) for a, sa in left for b, sb in right if float(sa @ sb) >= threshold]


# --- Augmented crops for calibration and evaluation ---------------------------------------------

def random_view(image: Image.Image, rng: np.random.Generator, short_side: int = 256) -> Image.Image:
    """Return a random view of an RGB image: a crop, maybe mirrored, with changed light.

    The crop covers 25-100 % of the image with an aspect ratio between 3:4 and 4:3; it is resized
    so that its short side is ``short_side`` pixels, mirrored half of the time, and its brightness
    and contrast are scaled by 0.8-1.2.
    """
    width, height = image.size
    area = rng.uniform(0.25, 1.0) * width * height
    aspect = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
    crop_w = int(min(width, max(8, round(np.sqrt(area * aspect)))))
    crop_h = int(min(height, max(8, round(np.sqrt(area / aspect)))))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    view = image.crop((left, top, left + crop_w, top + crop_h))
    scale = short_side / min(crop_w, crop_h)
    view = view.resize((max(1, round(crop_w * scale)), max(1, round(crop_h * scale))),
                       Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    view = ImageEnhance.Brightness(view).enhance(float(rng.uniform(0.8, 1.2)))
    return ImageEnhance.Contrast(view).enhance(float(rng.uniform(0.8, 1.2)))


def write_calibration_folder(sources: Sequence[Path | str], folder: Path | str, count: int,
                             seed: int = 0) -> Path:
    """Fill ``folder`` with ``count`` random views of ``sources`` (JPEG files) and a manifest.

    The manifest (``calibration_manifest.json``) records the source photograph of every file, so
    that a notebook can show which photographs calibration saw. An existing folder written by
    this function with the same sources, count and seed is reused; a folder holding anything
    else is refused, so that no file of yours is overwritten.
    """
    folder, sources = Path(folder), [Path(p) for p in sources]
    settings = {"sources": [p.name for p in sources], "count": count, "seed": seed}
    manifest = folder / MANIFEST
    if folder.exists() and any(folder.iterdir()):
        if not manifest.is_file():
            raise FileExistsError(f"{display_path(folder)} holds files that were not written by "
                                  "write_calibration_folder: choose another folder.")
        recorded = json.loads(manifest.read_text(encoding="utf-8"))
        if recorded["settings"] == settings and all((folder / f).is_file() for f in recorded["files"]):
            return folder
        for name in recorded["files"]:  # only files this function wrote before
            (folder / name).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = [load_rgb(p) for p in sources]
    files = {}
    for number in range(count):
        which = int(rng.integers(len(sources)))
        name = f"view_{number:04d}_{sources[which].stem}.jpg"
        random_view(images[which], rng).save(folder / name, quality=92)
        files[name] = sources[which].name
    manifest.write_text(json.dumps({"settings": settings, "files": files}, indent=1) + "\n",
                        encoding="utf-8")
    return folder


def calibration_sources(folder: Path | str) -> dict[str, str] | None:
    """Return {file: source photograph} from a folder's manifest, or None for a folder without one."""
    manifest = Path(folder) / MANIFEST
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text(encoding="utf-8"))["files"]


def evaluation_inputs(paths: Sequence[Path | str], count: int, seed: int = 1
                      ) -> tuple[np.ndarray, list[Path]]:
    """Return ``count`` preprocessed inputs from ``paths`` and the source of each.

    First every photograph as deployed (resize, centre crop), then random views of them
    (:func:`random_view`) until there are ``count``; all through the course's preprocessing.
    """
    paths = [Path(p) for p in paths]
    batch, used, _ = load_batch(paths)
    if not used:
        raise ValueError("None of the evaluation images could be read.")
    rng = np.random.default_rng(seed)
    images = [load_rgb(p) for p in used]
    arrays, sources = list(batch[:count]), list(used[:count])
    while len(arrays) < count:
        which = int(rng.integers(len(used)))
        arrays.append(preprocess(random_view(images[which], rng)))
        sources.append(used[which])
    return np.stack(arrays), sources


def digests(inputs: np.ndarray) -> set[str]:
    """Return the SHA-256 of every input tensor of a batch (to show two sets share none)."""
    return {hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest() for x in inputs}


# --- The calibration reader ----------------------------------------------------------------------

try:
    from onnxruntime.quantization import CalibrationDataReader
except ImportError:  # an onnxruntime without its quantization tools: the reader is unavailable
    CalibrationDataReader = object  # type: ignore[assignment,misc]


class FolderCalibrationReader(CalibrationDataReader):
    """Feed ``quantize_static`` the calibration images, preprocessed exactly as at inference.

    The images are read once with :func:`course_utils.preprocess.load_batch` (the PyTorch-free
    pipeline of notebook 04: resize 256, centre crop 224, ImageNet mean and standard deviation);
    unreadable files are listed in ``skipped``. Pass ``preprocess`` (path -> CHW float32 array)
    only to show what another preprocessing does. ``select(n)`` limits the reader to the first
    ``n`` images; every pass over the data starts again from the first.
    """

    def __init__(self, paths: Sequence[Path | str], input_name: str = "input", batch_size: int = 1,
                 preprocess: Callable[[Path], np.ndarray] | None = None) -> None:
        paths = [Path(p) for p in paths]
        if preprocess is None:
            self.inputs, self.used, self.skipped = load_batch(paths)
        else:
            self.inputs = np.stack([preprocess(p) for p in paths]).astype(np.float32)
            self.used, self.skipped = paths, []
        if len(self.inputs) == 0:
            raise ValueError("No calibration image could be read; see the skipped files.")
        self.input_name, self.batch_size = input_name, batch_size
        self._stop = len(self.inputs)
        self._start = self._next = 0

    def select(self, count: int | None) -> FolderCalibrationReader:
        """Use only the first ``count`` images (all of them for None) and rewind; returns self."""
        if count is not None and not 1 <= count <= len(self.inputs):
            raise ValueError(f"Asked for {count} calibration images; the folder gave {len(self.inputs)}.")
        self._start, self._stop = 0, len(self.inputs) if count is None else count
        return self.rewind()

    def rewind(self) -> FolderCalibrationReader:
        """Start the next pass from the first selected image; returns self."""
        self._next = self._start
        return self

    def get_next(self) -> dict[str, np.ndarray] | None:
        """Return the next batch as {input name: array}, or None when the pass is over."""
        if self._next >= self._stop:
            self.rewind()  # ready for the next pass
            return None
        end = min(self._next + self.batch_size, self._stop)
        batch = self.inputs[self._next:end]
        self._next = end
        return {self.input_name: batch}

    def __len__(self) -> int:
        return self._stop - self._start

    def set_range(self, start_index: int, end_index: int) -> None:
        """Restrict the pass to images ``start_index:end_index`` (ONNX Runtime's strided calibration)."""
        self._start, self._stop = start_index, min(end_index, len(self.inputs))
        self._next = self._start

    def digest(self) -> str:
        """A short hash of the selected inputs: calibration caches are keyed by it."""
        selected = np.ascontiguousarray(self.inputs[self._start:self._stop])
        return hashlib.sha256(selected.tobytes()).hexdigest()[:16]


# --- Quantized files -----------------------------------------------------------------------------

def settings_key(**settings: object) -> str:
    """Return a short hash of everything that determines a quantized file."""
    import onnxruntime as ort

    text = json.dumps({**settings, "onnxruntime": ort.__version__}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextlib.contextmanager
def model_output(path: Path | str, key: str, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path for a model file; on success move it to ``path``, stamped with ``key``.

    A file at ``path`` that course_utils did not write is refused (``overwrite=True`` replaces it),
    as :func:`course_utils.export.export_onnx` does. The stamp is the ``course_utils.export_key``
    metadata entry, checked with ``onnx.checker``.
    """
    from course_utils.export import atomic_output, stamp_and_check, read_export_key

    path = Path(path)
    if path.exists() and read_export_key(path) is None and not overwrite:
        raise FileExistsError(f"{display_path(path)} exists and was not written by course_utils. "
                              "Move it away, choose another path, or pass overwrite=True.")
    with atomic_output(path) as tmp_path:
        yield tmp_path
        stamp_and_check(tmp_path, key)


@dataclass(frozen=True)
class Variant:
    """One way to quantize a model: the settings ``quantize_static`` (or ``quantize_dynamic``) gets."""

    name: str
    per_channel: bool = True
    activations: str = "QUInt8"  # onnxruntime.quantization.QuantType member
    weights: str = "QInt8"
    method: str = "MinMax"  # CalibrationMethod member
    images: int | None = None  # calibration images; None: all the reader has
    reduce_range: bool = False  # 7-bit weights, against 16-bit saturation on x86 without VNNI
    op_types: tuple[str, ...] = ()  # operator types to quantize; (): all that ONNX Runtime can
    exclude: tuple[str, ...] = ()  # node names left in float32
    dynamic: bool = False  # quantize_dynamic: weights only, activations at run time
    calibration: str = "course preprocessing"  # how the calibration inputs were made (a label)

    @property
    def method_label(self) -> str:
        """What the CSV's calibration column says."""
        return "none (dynamic)" if self.dynamic else self.method


def _source_key(source: Path) -> str:
    from course_utils.export import read_export_key

    return read_export_key(source) or hashlib.sha256(source.read_bytes()).hexdigest()


def variant_key(variant: Variant, source: Path | str,
                reader: FolderCalibrationReader | None = None) -> str:
    """Return the key of the file ``variant`` makes from ``source`` (with ``reader``'s selected images)."""
    data = None if variant.dynamic or reader is None else reader.digest()
    settings = {k: v for k, v in asdict(variant).items() if k not in ("name", "calibration")}
    return settings_key(source=_source_key(Path(source)), variant=settings, data=data,
                        calibration=variant.calibration)


def calibration_cache(cache_dir: Path | str, source: Path | str, method: str,
                      reader: FolderCalibrationReader) -> Path:
    """Return where ``quantize_static`` keeps the ranges it measured (``calibration_cache_path``).

    The name depends on the model, the method and the selected calibration inputs, so that a
    change of any of them calibrates again.
    """
    source = Path(source)
    folder = Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    key = settings_key(source=_source_key(source), method=method, data=reader.digest())
    return folder / f"{source.stem}_{method}_{key}.json"


def quantize_variant(variant: Variant, source: Path | str, target: Path | str,
                     reader: FolderCalibrationReader | None = None,
                     cache_dir: Path | str | None = None) -> Path:
    """Write ``source`` quantized as ``variant`` describes to ``target``; reuse it if up to date.

    Static variants call ``quantize_static`` in QDQ format with ``reader`` (limited to
    ``variant.images``), keeping the measured ranges in ``cache_dir`` so that variants that
    differ only in how the ranges become integers (per-channel, types) calibrate once. Dynamic
    variants call ``quantize_dynamic``. Output that ONNX Runtime prints is swallowed.
    """
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)

    from course_utils.export import read_export_key

    source, target = Path(source), Path(target)
    if not variant.dynamic:
        if reader is None:
            raise ValueError(f"Variant {variant.name!r} is static: pass a calibration reader.")
        reader.select(variant.images)
    key = variant_key(variant, source, reader)
    if target.exists() and read_export_key(target) == key:
        return target
    options = {"per_channel": variant.per_channel, "reduce_range": variant.reduce_range,
               "weight_type": QuantType[variant.weights],
               "op_types_to_quantize": list(variant.op_types) or None,
               "nodes_to_exclude": list(variant.exclude) or None}
    with model_output(target, key) as tmp_path, contextlib.redirect_stdout(io.StringIO()):
        if variant.dynamic:
            quantize_dynamic(source, tmp_path, **options)
        else:
            cache = calibration_cache(cache_dir, source, variant.method, reader) if cache_dir else None
            quantize_static(source, tmp_path, reader, quant_format=QuantFormat.QDQ,
                            activation_type=QuantType[variant.activations],
                            calibrate_method=CalibrationMethod[variant.method],
                            calibration_cache_path=cache, **options)
    return target


def size_mb(path: Path | str) -> float:
    """Return a file's size in MB (1e6 bytes)."""
    return Path(path).stat().st_size / 1e6


# --- Measures ------------------------------------------------------------------------------------

def run_batches(session: object, inputs: np.ndarray, batch: int = 8) -> np.ndarray:
    """Run ``inputs`` through an ONNX Runtime session in batches; return the stacked first output."""
    name = session.get_inputs()[0].name  # type: ignore[attr-defined]
    parts = [session.run(None, {name: inputs[i:i + batch]})[0]  # type: ignore[attr-defined]
             for i in range(0, len(inputs), batch)]
    return np.concatenate(parts)


def sqnr_db(test: np.ndarray, reference: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB: 10 log10(sum ref^2 / sum (test - ref)^2).

    20 dB means the error carries 1 % of the reference's power; every 6 dB halves the error.
    """
    reference = np.asarray(reference, dtype=np.float64)
    noise = np.sum((np.asarray(test, dtype=np.float64) - reference) ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(reference**2) / noise))


def cosine_similarity(test: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Return the cosine of the angle between each row of ``test`` and of ``reference``."""
    a, b = np.asarray(test, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return np.sum(a * b, axis=-1) / np.where(norms > 0, norms, 1.0)


def top1_margin(logits: np.ndarray) -> np.ndarray:
    """Return, per row, how far the largest logit lies above the second largest."""
    top2 = np.sort(np.asarray(logits, dtype=np.float64), axis=-1)[..., -2:]
    return top2[..., 1] - top2[..., 0]


def agreement(test: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Score int8 logits against float32 logits of the same inputs.

    ``top1_agreement``: both pick the same class. ``top5_agreement``: the float32 top-1 class is
    among the five highest of ``test`` (how top-5 accuracy is scored, float32 being the label).
    """
    test, reference = np.asarray(test), np.asarray(reference)
    if test.shape != reference.shape:
        raise ValueError(f"Cannot compare shapes {list(test.shape)} and {list(reference.shape)}.")
    label = reference.argmax(axis=-1)
    top5 = np.argsort(-test, axis=-1, kind="stable")[:, :5]
    cosines = cosine_similarity(test, reference)
    return {
        "sqnr_db": sqnr_db(test, reference),
        "cosine": float(cosines.mean()),
        "cosine_min": float(cosines.min()),
        "top1_agreement": float(np.mean(test.argmax(axis=-1) == label)),
        "top5_agreement": float(np.mean((top5 == label[:, None]).any(axis=1))),
        "inputs": len(reference),
    }


MARGIN_EDGES = (0.0, 0.25, 0.5, 1.0, 2.0, np.inf)


def agreement_by_margin(test: np.ndarray, reference: np.ndarray,
                        edges: Sequence[float] = MARGIN_EDGES) -> pd.DataFrame:
    """Return top-1 agreement per bin of the float32 top-1 margin (columns: bin, inputs, agreement)."""
    import pandas as pd

    margin = top1_margin(reference)
    same = np.asarray(test).argmax(axis=-1) == np.asarray(reference).argmax(axis=-1)
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (margin >= low) & (margin < high)
        label = f"{low:g}-{high:g}" if np.isfinite(high) else f">= {low:g}"
        rows.append((label, low, int(inside.sum()), float(same[inside].mean()) if inside.any() else np.nan))
    return pd.DataFrame(rows, columns=["margin", "low", "inputs", "top1_agreement"])


# --- ONNX Runtime's per-operator profile ---------------------------------------------------------

def conv_kind(weight_shape: Sequence[int]) -> str:
    """Name a convolution by its weight shape [out, in/groups, kh, kw]: depthwise, 1x1 or kxk."""
    if len(weight_shape) != 4:
        return "other"
    _, per_group, kh, kw = weight_shape
    if per_group == 1 and kh * kw > 1:
        return "depthwise"
    return "1x1" if kh == kw == 1 else f"{kh}x{kw}"


def conv_kinds(model_path: Path | str) -> dict[str, str]:
    """Return {Conv node name: kind} for a float or QDQ model (weights behind DequantizeLinear too)."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    shapes = {init.name: list(init.dims) for init in graph.initializer}
    dequantized = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    kinds = {}
    for node in graph.node:
        if node.op_type in ("Conv", "ConvInteger"):
            weight = node.input[1]
            shape = shapes.get(weight) or shapes.get(dequantized.get(weight, ""), [])
            kinds[node.name] = conv_kind(shape)
    return kinds


def read_profile(profile_path: Path | str, model_path: Path | str | None = None) -> pd.DataFrame:
    """Turn the JSON file of ``session.end_profiling()`` into one row per node.

    Columns: node, op type (the kernel ONNX Runtime ran, after its own fusions), kind (for
    convolutions: depthwise, 1x1, 3x3...), runs, median microseconds per run. The session must
    have been created with ``SessionOptions.enable_profiling = True``. ``model_path`` lets
    convolutions whose weights were packed away (QLinearConv) be named by the file's weights.
    """
    import pandas as pd

    events = json.loads(Path(profile_path).read_text(encoding="utf-8"))
    named = conv_kinds(model_path) if model_path is not None else {}
    durations: dict[str, list[float]] = {}
    info: dict[str, tuple[str, str]] = {}
    for event in events:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time"):
            continue
        node, args = event["name"][: -len("_kernel_time")], event.get("args", {})
        op_type = args.get("op_name", "?")
        kind = ""
        if "Conv" in op_type:
            shapes = [next(iter(s.values())) for s in args.get("input_type_shape", [])]
            kind = conv_kind(shapes[1]) if len(shapes) > 1 and len(shapes[1]) == 4 else "other"
            kind = named.get(re.sub(r"_token_\d+$", "", node), kind)
        durations.setdefault(node, []).append(float(event["dur"]))
        info[node] = (op_type, kind)
    rows = [(node, *info[node], len(times), float(np.median(times))) for node, times in durations.items()]
    return pd.DataFrame(rows, columns=["node", "op type", "kind", "runs", "median_us"])


def profile_summary(profiles: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Sum the median time per run by operator (and kind of convolution), one column per profile, in ms."""
    import pandas as pd

    columns = {}
    for label, table in profiles.items():
        key = table["op type"] + np.where(table["kind"] != "", " (" + table["kind"] + ")", "")
        columns[label] = table.groupby(key)["median_us"].sum() / 1e3
    summary = pd.DataFrame(columns).fillna(0.0)
    summary = summary.loc[summary.max(axis=1).sort_values(ascending=False).index]
    summary.loc["total"] = summary.sum()
    summary.index.name = "operator"
    return summary


# --- Results -------------------------------------------------------------------------------------

def save_results(table: pd.DataFrame, folder: Path | str | None = None) -> Path:
    """Write ``quantization.csv`` (the CSV columns only, in order) and return its path."""
    missing = [c for c in CSV_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"The results lack the columns {missing}.")
    folder = Path(folder) if folder is not None else results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "quantization.csv"
    table.loc[:, list(CSV_COLUMNS)].to_csv(path, index=False)
    return path


def plot_agreement_by_margin(curves: dict[str, pd.DataFrame]) -> Figure:
    """Plot top-1 agreement against the float32 top-1 margin, one line per labelled curve.

    Each curve is a table from :func:`agreement_by_margin`; point labels give the inputs per bin.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for number, (label, table) in enumerate(curves.items()):
        x = np.arange(len(table))
        ax.plot(x, table["top1_agreement"], marker="o", label=label, color=f"C{number}")
        for xi, (share, count) in enumerate(zip(table["top1_agreement"], table["inputs"])):
            if count:
                ax.annotate(str(count), (xi, share), textcoords="offset points", xytext=(0, 5),
                            ha="center", fontsize=7, color=f"C{number}")
    first = next(iter(curves.values()))
    ax.set_xticks(np.arange(len(first)), first["margin"])
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("float32 top-1 margin (largest logit minus second largest)")
    ax.set_ylabel("top-1 agreement, int8 vs float32")
    ax.set_title("Small margins flip first (numbers: inputs per bin)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_speed_vs_agreement(table: pd.DataFrame, groups: dict[str, str], batch: int = 1,
                            unlabelled: Sequence[str] = ()) -> Figure:
    """Plot each variant's speed-up over float32 ONNX Runtime against its top-1 agreement.

    ``table`` needs the columns model, variant, batch, speedup and top1_agreement; one panel per
    model. ``groups`` maps variant names to a group, which gives the colour and the legend
    (variants in no group are left out); points of the ``unlabelled`` groups get no name.
    The y axis is logarithmic: 2x faster and 2x slower lie equally far from the line at 1.
    """
    import matplotlib.pyplot as plt

    rows = table[(table["batch"] == batch) & table["speedup"].notna()
                 & table["top1_agreement"].notna() & table["variant"].isin(list(groups))]
    if rows.empty:
        raise ValueError(f"No variant of the groups has a speed-up and an agreement at batch {batch}.")
    models = list(dict.fromkeys(rows["model"]))
    colours = {group: f"C{i % 10}" for i, group in enumerate(dict.fromkeys(groups.values()))}
    fig, axes = plt.subplots(1, len(models), figsize=(5.6 * len(models), 4.4), squeeze=False)
    for ax, model in zip(axes[0], models):
        mine = rows[rows["model"] == model]
        low, high = np.log2(mine["speedup"].min()), np.log2(mine["speedup"].max())
        powers = range(int(np.floor(min(low, 0))), int(np.ceil(max(high, 0))) + 1)
        ticks = [2.0**k for k in powers]
        for group, part in mine.groupby(mine["variant"].map(groups), sort=False):
            ax.scatter(part["top1_agreement"], part["speedup"], color=colours[group], label=group,
                       zorder=3, s=22)
            if group in unlabelled:
                continue
            for _, row in part.iterrows():
                ax.annotate(row["variant"], (row["top1_agreement"], row["speedup"]), fontsize=7,
                            textcoords="offset points", xytext=(4, 3))
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_yscale("log")
        ax.minorticks_off()
        ax.set_yticks(ticks, [f"{t:g}" if t >= 1 else f"1/{1 / t:g}" for t in ticks])
        ax.set_xlim(-0.02, 1.15)
        ax.set_xlabel("top-1 agreement with float32")
        ax.set_ylabel("speed-up over float32 ONNX Runtime (x)")
        ax.set_title(f"{model}, batch {batch}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig
