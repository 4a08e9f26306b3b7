"""Run notebooks twice in a row in one kernel, as a learner who presses "Run All" twice does.

    python tests/run_twice.py notebooks/04_onnxruntime_inference.ipynb [...]

Every code cell runs, top to bottom, then every code cell again in the same kernel. Any error
in either pass fails the run and names the pass, the cell and the error. Nothing is written
back to the notebooks unless :func:`run_twice` is given ``save_to`` (``make test-matrix`` saves
the second pass of temporary copies). The environment is inherited.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def run_twice(
    path: Path, timeout_s: int = 900, save_to: Path | None = None, env: dict[str, str] | None = None
) -> float:
    """Execute ``path``'s code cells twice in one kernel; return the wall time in seconds.

    With ``save_to``, the notebook with the second pass's outputs is written there; ``env``
    replaces the kernel's environment (by default it inherits this process's).
    """
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout_s, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.perf_counter()
    with client.setup_kernel(**({"env": env} if env is not None else {})):
        for attempt in ("first", "second"):
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type != "code":
                    continue
                try:
                    client.execute_cell(cell, index)
                except CellExecutionError as error:
                    evalue = (error.evalue or "").strip().splitlines()
                    summary = f"{error.ename}: {evalue[0] if evalue else ''}"
                    raise RuntimeError(f"{path.name}: {attempt} pass, cell {index}: {summary}") from None
    if save_to is not None:
        nbformat.write(notebook, save_to)
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
