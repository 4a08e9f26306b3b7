"""Notebook parameters that environment variables may override."""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T", int, float, str, bool)


def setting(name: str, default: T) -> T:
    """Return environment variable ``name`` converted to the type of ``default``.

    Tests and classrooms use this to shrink or redirect a run without editing a
    notebook, e.g. ``COURSE_REPEATS=5``.
    """
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}  # type: ignore[return-value]
    try:
        return type(default)(raw)
    except ValueError as exc:
        raise ValueError(
            f"Environment variable {name}={raw!r} is not a valid {type(default).__name__}; "
            f"unset it or give a value like {default!r}."
        ) from exc


def quick_mode() -> bool:
    """True when ``COURSE_QUICK`` asks for a shortened run (``make test`` sets it)."""
    return setting("COURSE_QUICK", False)
