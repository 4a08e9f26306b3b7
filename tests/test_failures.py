"""Tests for course_utils.failures: expected errors, sanitised messages, diagnosis helpers."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from course_utils.failures import (
    Caught,
    captured_messages,
    expect_error,
    key_lines,
    markdown_table,
    node_values,
    report_summary,
    sanitise,
    symptom_line,
)
from course_utils.paths import repo_root


def test_sanitise_paths_addresses_colours_and_time_stamps() -> None:
    site = Path(torch.__file__).parent / "onnx" / "__init__.py"
    text = (
        f"\x1b[96mstep 1/3\x1b[0m at 0x7f985f752980 in {site}, "
        f"{repo_root() / 'models' / 'a.onnx'} and /home/someone/private/b.onnx; "
        'File "/tmp/ipykernel_21188/4007518879.py", line 5; '
        "report onnx_export_2026-11-26_08-06-54-666874_conversion.md; "
        "see https://docs.pytorch.org/docs/stable/onnx.html"
    )
    clean = sanitise(text)
    assert clean.startswith("step 1/3 at 0xADDRESS in site-packages/torch/onnx/__init__.py")
    assert "models/a.onnx" in clean and str(repo_root()) not in clean
    assert " b.onnx;" in clean and "someone" not in clean
    assert 'File "<notebook cell>", line 5' in clean
    assert "onnx_export_<time>_conversion.md" in clean
    assert "https://docs.pytorch.org/docs/stable/onnx.html" in clean


def test_key_lines_first_line_patterns_and_clipping() -> None:
    text = "\n  first line  \nsecond: value 42\n" + "x" * 500
    assert key_lines(text) == ["first line"]
    assert key_lines(text, [r"value \d+"]) == ["value 42"]
    (long,) = key_lines(text, [r"x+"])
    assert long.endswith(" …") and len(long) <= 240
    with pytest.raises(AssertionError, match="Expected the message to contain"):
        key_lines(text, ["absent"])


def test_expect_error_catches_checks_and_prints(capsys: pytest.CaptureFixture[str]) -> None:
    show = [r"bad value \d+", r"hint: .*"]
    with expect_error(ValueError, r"bad value \d+", show=show) as caught:
        raise ValueError("Something went wrong: bad value 7\nhint: use 8 at 0x1234abcd")
    assert isinstance(caught.exception, ValueError)
    assert caught.lines == ["bad value 7", "hint: use 8 at 0xADDRESS"]
    assert capsys.readouterr().out == "ValueError: bad value 7\n    hint: use 8 at 0xADDRESS\n"


def test_expect_error_fails_when_the_call_succeeds() -> None:
    with pytest.raises(AssertionError, match="but the call succeeded"):
        with expect_error(ValueError, "anything"):
            pass


def test_expect_error_fails_on_another_message() -> None:
    with pytest.raises(AssertionError, match="does not match"):
        with expect_error(ValueError, "expected text"):
            raise ValueError("other text")


def test_expect_error_lets_another_type_through() -> None:
    with pytest.raises(KeyError):
        with expect_error(ValueError, "x"):
            raise KeyError("x")


def test_expect_error_accepts_a_tuple_of_types() -> None:
    with expect_error((KeyError, ValueError), "x") as caught:
        raise KeyError("x")
    assert isinstance(caught.exception, KeyError)
    with pytest.raises(AssertionError, match="Expected KeyError or ValueError"):
        with expect_error((KeyError, ValueError), "x"):
            pass


def test_captured_messages_records_warnings_and_log_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = logging.getLogger("torch.onnx")  # torch's handler writes to the current sys.stderr
    with captured_messages() as messages:
        warnings.warn("careful at /home/someone/x.py", UserWarning)
        print("graph dump that nobody needs")
        sys.stderr.write("W1126 08:04:46.800000 8804 torch/_export/file.py:825] dimension fixed\n")
        logger.warning("plain record")
    assert messages.warnings == ["UserWarning: careful at x.py"]
    assert messages.logs[0] == "W torch/_export/file.py: dimension fixed"
    assert messages.logs[-1].startswith("W ") and messages.logs[-1].endswith(": plain record")
    assert capsys.readouterr().out == ""
    assert messages.show("dimension") == ["W torch/_export/file.py: dimension fixed"]
    assert capsys.readouterr().out == "W torch/_export/file.py: dimension fixed\n"
    with pytest.raises(AssertionError, match="No warning or log line matches"):
        messages.show("absent")


def test_symptom_line_and_markdown_table() -> None:
    caught = Caught(exception=ValueError("x"), lines=["first `quoted`", "second"])
    assert symptom_line(caught) == "`ValueError: first 'quoted'`"
    assert symptom_line(caught, 1) == "`ValueError: second`"
    assert symptom_line("a   log\nline") == "`a log line`"
    table = markdown_table(["a", "b"], [("1", "x|y")])
    assert table.splitlines() == ["| a | b |", "| --- | --- |", "| 1 | x\\|y |"]


def test_report_summary_reads_outcome_steps_sections_and_missing_ops(tmp_path: Path) -> None:
    report = tmp_path / "onnx_export_2026-11-26_08-06-54-666874_conversion.md"
    report.write_text(
        "# PyTorch ONNX Conversion Report\n\n"
        "```\n✅ Obtain model graph\n❌ Translate the graph\n```\n\n"
        "## Error messages\n\ntext\n\n## ONNX Conversion Information\n\n"
        "- `course.op.default`:     No decompositions registered for the real-valued input.\n",
        encoding="utf-8",
    )
    summary = report_summary(report)
    assert summary.outcome == "conversion"
    assert summary.steps == ["✅ Obtain model graph", "❌ Translate the graph"]
    assert summary.sections == ["Error messages", "ONNX Conversion Information"]
    assert summary.unsupported == ["course.op.default"]


def test_node_values_are_the_references_verify_compares(tiny_model: torch.nn.Module) -> None:
    import torch.onnx.verification

    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    program = torch.onnx.export(tiny_model, (x,), dynamo=True, verbose=False)
    infos = torch.onnx.verification.verify_onnx_program(
        program, args=(x,), compare_intermediates=True
    )
    values = node_values(program, (x,))
    assert infos and all(info.name in values for info in infos)
    with torch.no_grad():
        expected = tiny_model(x)
    np.testing.assert_array_equal(values[infos[-1].name].numpy(), expected.numpy())
