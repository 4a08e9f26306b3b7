"""Show expected export failures and diagnose exported files (taught in notebook 08).

Notebook ``08_when_export_fails`` breaks exports on purpose. The failing call stays visible in
the notebook, inside ``with expect_error(...)``: the block must raise the expected exception
type with a message that matches, or the cell fails. Only the key lines of the message are
printed, with machine paths, memory addresses, time stamps and colour codes taken out, so that
the stored outputs read the same on every machine.

The exporter also talks through Python warnings and log records (with time stamps and process
ids). :func:`captured_messages` collects both during a block, so that the notebook can print
the ones that matter instead of letting them scroll past.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from course_utils.paths import repo_root

LINE_LIMIT = 240  # printed characters per message line; longer lines end in " …"

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d-\d+")
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])(?:/[\w.@+~-]+)+")
_CELL_FILE = re.compile(r"(?:/[^\s\"':/]+)*/ipykernel_\d+/\d+\.py")
# torch's log lines start "W1126 08:04:46.800000 8804 torch/_export/file.py:825] message".
_TORCH_LOG = re.compile(r"^([DIWEC])\d{4} [\d:.]+ +\d+ (\S+?)(?::\d+)?\] ?(.*)$")


def _shorten_path(match: re.Match[str]) -> str:
    text = match.group(0)
    if _CELL_FILE.fullmatch(text):
        return "<notebook cell>"
    path = Path(text)
    for anchor in ("site-packages", "dist-packages"):
        if anchor in path.parts:
            return "/".join(path.parts[path.parts.index(anchor):])
    try:
        return path.relative_to(repo_root()).as_posix()
    except ValueError:
        return path.name or text


def sanitise(text: str) -> str:
    """Return ``text`` without colour codes, memory addresses, time stamps and machine paths.

    Paths inside the course become relative to it, paths into an installed package start at
    ``site-packages``, a notebook cell's temporary file becomes ``<notebook cell>``, and any
    other absolute path keeps only its file name.
    """
    text = _ANSI.sub("", text)
    text = _CELL_FILE.sub("<notebook cell>", text)
    text = _ABSOLUTE_PATH.sub(_shorten_path, text)
    text = _ADDRESS.sub("0xADDRESS", text)
    return _TIMESTAMP.sub("<time>", text)


def _clip(line: str, limit: int = LINE_LIMIT) -> str:
    line = line.strip()
    return line if len(line) <= limit else line[: limit - 2].rstrip() + " …"


def key_lines(text: str, show: Sequence[str] = ()) -> list[str]:
    """Return the parts of ``text`` worth printing: the first match of each ``show`` regex.

    Without ``show``, the first non-empty line. Each part is clipped to ``LINE_LIMIT``.
    """
    if not show:
        first = next((line for line in text.splitlines() if line.strip()), "")
        return [_clip(first)]
    parts = []
    for pattern in show:
        found = re.search(pattern, text, flags=re.MULTILINE)
        if found is None:
            raise AssertionError(f"Expected the message to contain {pattern!r}; it reads:\n{text}")
        parts.append(_clip(found.group(0)))
    return parts


@dataclass
class Messages:
    """Warnings and log lines recorded by :func:`captured_messages`, sanitised."""

    warnings: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    def find(self, pattern: str) -> list[str]:
        """Return every warning and log line that matches the regex ``pattern``."""
        return [m for m in (*self.warnings, *self.logs) if re.search(pattern, m)]

    def show(self, pattern: str) -> list[str]:
        """Print (clipped) and return the messages matching ``pattern``; fail if there are none."""
        found = list(dict.fromkeys(self.find(pattern)))
        if not found:
            raise AssertionError(f"No warning or log line matches {pattern!r}: {self}")
        for message in found:
            print(_clip(message))
        return found


def _log_line(line: str) -> str:
    """Turn one line that a logger wrote to stderr into "W source: message"."""
    parsed = _TORCH_LOG.match(line)
    if parsed is None:
        return sanitise(line.strip())
    level, source, message = parsed.groups()
    return sanitise(f"{level} {source}: {message}")


@contextlib.contextmanager
def captured_messages() -> Iterator[Messages]:
    """Record the warnings and the log output of the block instead of printing them.

    torch writes its log records to whatever ``sys.stderr`` is at the time, with a time stamp
    and a process id; they are collected here one line each, as "W torch/...py: message".
    What the block prints to stdout is dropped (graph dumps of a failed capture, progress).
    """
    messages = Messages()
    stderr = io.StringIO()
    try:
        with warnings.catch_warnings(record=True) as caught, \
                contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("always")
            yield messages
    finally:
        messages.warnings.extend(
            sanitise(f"{w.category.__name__}: {str(w.message).strip()}") for w in caught
        )
        lines = stderr.getvalue().splitlines()
        messages.logs.extend(_log_line(line) for line in lines if line.strip())


@dataclass
class Caught:
    """The exception that :func:`expect_error` caught, its sanitised text and the lines printed."""

    exception: BaseException | None = None
    text: str = ""
    lines: list[str] = field(default_factory=list)
    messages: Messages = field(default_factory=Messages)


@contextlib.contextmanager
def expect_error(
    kind: type[BaseException] | tuple[type[BaseException], ...],
    match: str,
    *,
    show: Sequence[str] = (),
) -> Iterator[Caught]:
    """Require the block to raise ``kind`` with a message matching ``match``; print its key lines.

    The block fails the cell if it raises nothing ("the call succeeded"), if the message does
    not match the regex ``match``, or (the exception passes through) if it raises another type.
    ``show`` are regexes for the parts of the message to print; without them, its first line.
    Warnings and log output of the block are recorded in ``caught.messages``, not printed.
    Notebook 08 shows every expected failure with it.
    """
    caught = Caught()
    try:
        with captured_messages() as caught.messages:
            yield caught
    except kind as exc:
        text = sanitise(str(exc))
        if not re.search(match, text, flags=re.MULTILINE):
            raise AssertionError(
                f"{type(exc).__name__} was raised, but its message does not match "
                f"{match!r}:\n{text}"
            ) from exc
        caught.exception, caught.text = exc, text
        caught.lines = key_lines(text, show)
    else:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise AssertionError(f"Expected {names} matching {match!r}, but the call succeeded.")
    print(f"{type(caught.exception).__name__}: {caught.lines[0]}")
    for line in caught.lines[1:]:
        print(f"    {line}")


def node_values(program: object, args: tuple) -> dict[str, object]:
    """Return PyTorch's value of every operator node of an ``ONNXProgram``, by name (notebook 08).

    These are the reference values that ``torch.onnx.verification.verify_onnx_program(...,
    compare_intermediates=True)`` compares ONNX Runtime's intermediate values with; it reports
    differences, and these give the scale each difference is judged against.
    """
    import torch  # here, so that importing this module does not import torch

    values: dict[str, object] = {}

    class _Recorder(torch.fx.Interpreter):
        def run_node(self, node: torch.fx.Node) -> object:
            result = super().run_node(node)
            if node.op == "call_function":
                values[node.name] = result
            return result

    with torch.no_grad():
        _Recorder(program.exported_program.module()).run(*args)
    return values


@dataclass
class ReportSummary:
    """What a Markdown report from ``torch.onnx.export(..., report=True)`` says."""

    outcome: str
    steps: list[str]
    sections: list[str]
    unsupported: list[str]


def report_summary(path: Path | str) -> ReportSummary:
    """Summarise an export report: outcome, the checklist of steps, section titles, missing ops.

    The outcome is the report file's last name part (``success``, ``conversion``, ``accuracy``,
    ...). ``unsupported`` lists the operators the report says have no ONNX translation.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    checklist = text.split("```", 2)[1]
    return ReportSummary(
        outcome=path.stem.rsplit("_", 1)[-1],
        steps=[line.strip() for line in checklist.splitlines() if line.strip()],
        sections=re.findall(r"^## (.+)$", text, flags=re.MULTILINE),
        unsupported=re.findall(r"^- `([^`]+)`: +No decompositions registered", text, re.MULTILINE),
    )


def symptom_line(symptom: Caught | str, line: int = 0, limit: int = 120) -> str:
    """Return a caught error ("Type: its key line ``line``") or a message as Markdown code."""
    if isinstance(symptom, Caught):
        symptom = f"{type(symptom.exception).__name__}: {symptom.lines[line]}"
    return "`" + _clip(" ".join(symptom.split()), limit).replace("`", "'") + "`"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return a Markdown table; cells are plain text or Markdown, ``|`` is escaped."""
    def row(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    lines = [row(header), row(["---"] * len(header)), *(row(r) for r in rows)]
    return "\n".join(lines)
