"""Run notebooks twice in a row in one kernel, as a learner who presses "Run All" twice does.

    python tests/run_twice.py notebooks/04_onnxruntime_inference.ipynb [...]

Every code cell runs, top to bottom, then every code cell again in the same kernel. Any error
in either pass fails the run and names the pass, the cell and the error. Nothing is written
back to the notebooks. The environment is inherited (``make test-matrix`` sets the test one).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def run_twice(path: Path, timeout_s: int = 900) -> float:
    """Execute ``path``'s code cells twice in one kernel; return the wall time in seconds."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout_s, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.perf_counter()
    with client.setup_kernel():
        for attempt in ("first", "second"):
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type != "code":
                    continue
                try:
                    client.execute_cell(cell, index)
                except CellExecutionError as error:
                    summary = str(error).strip().splitlines()[-1]
                    raise RuntimeError(f"{path.name}: {attempt} pass, cell {index}: {summary}") from None
    return time.perf_counter() - started


def main(paths: list[str]) -> int:
    failures = 0
    for name in paths:
        try:
            seconds = run_twice(Path(name))
            print(f"ran twice in one kernel: {name} ({seconds:.0f} s)", flush=True)
        except RuntimeError as error:
            failures += 1
            print(f"FAILED {error}", flush=True)
    print(f"{len(paths) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
