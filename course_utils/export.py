"""Export a model to ONNX once, atomically, and describe what was written.

The notebooks call ``torch.onnx.export`` directly where the export is the
lesson, and :func:`export_in_memory` where they compare export options side by
side; later lessons call :func:`export_onnx` to get an up-to-date file.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import json
import os
import shutil
import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

import onnx
import pandas as pd
import torch
from torch import nn

from course_utils.metadata import deployment_metadata
from course_utils.paths import display_path
from course_utils.weights import LoadedModel, fingerprint

KEY_PROP = "course_utils.export_key"
DYNAMIC_AXES = {"batch": 0, "height": 2, "width": 3}


def export_key(**settings: object) -> str:
    """Return a short hash of everything that determines an exported file."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_export_key(path: Path) -> str | None:
    """Return the key :func:`export_onnx` stamped into ``path``, or None if it has none."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # not an ONNX file at all: certainly not ours
        return None
    return next((p.value for p in model.metadata_props if p.key == KEY_PROP), None)


def _up_to_date(path: Path, key: str, overwrite: bool) -> bool:
    """True if ``path`` already holds the file for ``key``; refuse to clobber foreign files."""
    if not path.exists():
        return False
    existing = read_export_key(path)
    if existing == key:
        print(f"Reusing up-to-date {display_path(path)}")
        return True
    if existing is None and not overwrite:
        raise FileExistsError(
            f"{display_path(path)} exists and was not written by course_utils. "
            "Move it away, choose another path, or pass overwrite=True to replace it."
        )
    return False


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move the result into place only on success.

    The model file and its ``.data`` companion (if any) are written in a private
    temporary folder, so a failed export never leaves a half-written model behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        tmp_path = tmp_dir / path.name
        yield tmp_path
        for produced in sorted(tmp_dir.iterdir(), key=lambda p: p == tmp_path):
            os.replace(produced, path.parent / produced.name)  # the .onnx itself last
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def stamp_and_check(tmp_path: Path, key: str, extra: dict[str, str] | None = None) -> None:
    """Write the export key (and ``extra`` metadata) into the file, then run the full checker."""
    props = {**(extra or {}), KEY_PROP: key}
    model = onnx.load(str(tmp_path), load_external_data=False)
    kept = [p for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for name, value in props.items():
        model.metadata_props.add(key=name, value=value)
    onnx.save(model, str(tmp_path))
    onnx.checker.check_model(str(tmp_path), full_check=True)


def export_onnx(
    model: nn.Module | LoadedModel,
    path: Path | str,
    *,
    dynamo: bool = True,
    input_shape: tuple[int, int, int, int] = (1, 3, 224, 224),
    input_names: tuple[str, ...] = ("input",),
    output_names: tuple[str, ...] = ("logits",),
    opset: int | None = None,
    dynamic: Iterable[str] = (),
    single_file: bool = True,
    overwrite: bool = False,
) -> Path:
    """Export ``model`` to ``path`` with the chosen exporter and check it with ``onnx.checker``.

    The steps are the ones notebook 02 teaches (and notebook 03 for dynamic axes), done once
    and atomically for the later lessons. ``dynamic`` names the axes to make dynamic: any of ``"batch"``, ``"height"``,
    ``"width"``. The file is reused when an earlier call with the same model
    weights and settings wrote it; a file this function did not write is never
    replaced unless ``overwrite=True``.

    Given a :class:`~course_utils.weights.LoadedModel`, the file also carries the
    deployment metadata (model, weights, preprocessing, labels; see
    :mod:`course_utils.metadata`) that the web page and the service read.
    """
    path = Path(path)
    extra = None
    if isinstance(model, LoadedModel):
        extra = deployment_metadata(model.name, model.weights, model.is_standin)
        model = model.model
    dynamic = sorted(set(dynamic))
    unknown = set(dynamic) - set(DYNAMIC_AXES)
    if unknown:
        raise ValueError(f"Unknown dynamic axes {sorted(unknown)}; choose from {list(DYNAMIC_AXES)}.")
    if model.training:
        raise ValueError("The model is in train mode: call model.eval() before exporting.")
    key = export_key(
        model=type(model).__name__, weights=fingerprint(model), dynamo=dynamo, input_shape=input_shape,
        input_names=input_names, output_names=output_names, opset=opset, dynamic=dynamic,
        single_file=single_file, torch=torch.__version__, metadata=extra,
    )
    if _up_to_date(path, key, overwrite):
        return path
    example = torch.randn(*input_shape, generator=torch.Generator().manual_seed(0))
    options: dict[str, object] = {"input_names": list(input_names), "output_names": list(output_names)}
    if opset is not None:
        options["opset_version"] = opset
    if dynamo:
        arg_name = next(iter(inspect.signature(model.forward).parameters))
        options["dynamic_shapes"] = (
            {arg_name: {DYNAMIC_AXES[a]: torch.export.Dim(a) for a in dynamic}} if dynamic else None
        )
        options.update(dynamo=True, external_data=not single_file, verbose=False)
    else:
        axes = {input_names[0]: {DYNAMIC_AXES[a]: a for a in dynamic}}
        if "batch" in dynamic:
            axes[output_names[0]] = {0: "batch"}
        options.update(dynamo=False, dynamic_axes=axes if dynamic else None)
    with atomic_output(path) as tmp_path, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter's notice
        with contextlib.redirect_stdout(None):
            torch.onnx.export(model, (example,), str(tmp_path), **options)
        stamp_and_check(tmp_path, key, extra)
    return path


def export_in_memory(
    model: nn.Module, args: tuple, *, dynamo: bool = True, **options: object
) -> tuple[onnx.ModelProto, list[warnings.WarningMessage]]:
    """Export ``model`` with ``torch.onnx.export`` without writing a file, to compare export options.

    ``options`` go to ``torch.onnx.export`` unchanged. Returns the ONNX model and
    every warning the export raised (none is shown). Nothing is checked or kept:
    use :func:`export_onnx` for a file to deploy.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if dynamo:
            options.setdefault("verbose", False)
            proto = torch.onnx.export(model, args, dynamo=True, **options).model_proto
        else:
            buffer = io.BytesIO()
            torch.onnx.export(model, args, buffer, dynamo=False, **options)
            proto = onnx.load_from_string(buffer.getvalue())
    return proto, list(caught)


def simplify_onnx(src: Path | str, dst: Path | str, *, overwrite: bool = False) -> Path:
    """Run onnxsim on ``src`` and write the simplified model atomically to ``dst``.

    Dynamic dimensions stay dynamic. Reuses ``dst`` when it was made from the same ``src``.
    """
    import onnxsim

    src, dst = Path(src), Path(dst)
    key = export_key(src=read_export_key(src) or onnx_sha256(src), onnxsim=onnxsim.__version__)
    if _up_to_date(dst, key, overwrite):
        return dst
    simplified, ok = onnxsim.simplify(onnx.load(str(src)))
    if not ok:
        raise RuntimeError(f"onnxsim could not verify the simplified {display_path(src)}; keep the original.")
    with atomic_output(dst) as tmp_path:
        onnx.save(simplified, str(tmp_path))
        stamp_and_check(tmp_path, key)
    return dst


def onnx_sha256(path: Path | str) -> str:
    """Return the SHA-256 of a file's bytes (its ``.onnx.data`` companion not included)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def op_type_counts(models: dict[str, Path | str | onnx.ModelProto]) -> pd.DataFrame:
    """Return a table of node counts per op type, one column per named model (a file or a loaded model)."""
    protos = {
        label: m if isinstance(m, onnx.ModelProto) else onnx.load(str(m), load_external_data=False)
        for label, m in models.items()
    }
    counts = {label: Counter(node.op_type for node in proto.graph.node) for label, proto in protos.items()}
    table = pd.DataFrame(counts).fillna(0).astype(int).sort_index()
    table.loc["total"] = table.sum()
    table.index.name = "op type"
    return table


def file_sizes(path: Path | str) -> pd.DataFrame:
    """Return the size of an ONNX file and of its external-data companion, if any, in MB.

    Sizes are rounded to 0.1 MB: files from the default exporter embed the Python stack traces
    of the export, paths included, so their size varies by a few KB from machine to machine.
    """
    path = Path(path)
    rows = [(display_path(p), round(p.stat().st_size / 1e6, 1))
            for p in (path, path.with_name(path.name + ".data")) if p.exists()]
    return pd.DataFrame(rows, columns=["file", "MB"])


def _dims(value_info: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def io_table(path: Path | str) -> pd.DataFrame:
    """Return the graph's inputs and outputs with element type and shape (names for dynamic dims)."""
    model = onnx.load(str(path), load_external_data=False)
    rows = [
        (kind, v.name, onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type).lower(), _dims(v))
        for kind, values in (("input", model.graph.input), ("output", model.graph.output))
        for v in values
    ]
    return pd.DataFrame(rows, columns=["kind", "name", "type", "shape"])
