"""The ``.onnx`` file a service serves, exported with its deployment metadata (notebook 11).

The export needs PyTorch; the service must not. :func:`ensure_model` therefore runs the export in
a child process (``python -m course_utils.serve.model_file NAME PATH``), and the process that
serves never imports torch.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from course_utils.paths import display_path, models_dir


def serving_path(model: str) -> Path:
    """Where the service's file for ``model`` (a course model name such as ``resnet18``) lives."""
    return models_dir() / f"{model}_serve.onnx"


def ensure_model(model: str, timeout_s: float = 600.0) -> Path:
    """Return the ``.onnx`` file to serve for ``model``: a path to an ``.onnx`` file, or a model name.

    A name is exported (or an up-to-date file reused) by
    ``export_onnx(load_model(name), serving_path(name), dynamic=["batch"])`` in a child process, so
    ``COURSE_WEIGHTS`` applies. The file carries the labels and preprocessing the service reads.
    The child's output is not shown; a failed export raises RuntimeError with its last lines.
    """
    if model.endswith(".onnx"):
        path = Path(model).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"No model file {display_path(path)}: give an exported .onnx file "
                                    "or a model name such as resnet18.")
        return path
    path = serving_path(model)
    done = subprocess.run([sys.executable, "-m", "course_utils.serve.model_file", model, str(path)],
                          capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        last = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"Exporting {model} to {display_path(path)} failed:\n{last}")
    return path


def _export(model: str, path: Path) -> None:
    from course_utils.export import export_onnx  # PyTorch: in this child process only
    from course_utils.weights import load_model

    export_onnx(load_model(model), path, dynamic=["batch"])


if __name__ == "__main__":
    _export(sys.argv[1], Path(sys.argv[2]))
