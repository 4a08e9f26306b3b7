"""How much a deployment installs: the packages an extra pulls in, and their size on disk (notebook 11).

Sizes are read from this environment's own installation records (each package's ``RECORD``
file lists the files it installed), so nothing is downloaded: the figure for the ``serve`` extra
is what ``pip install "course-utils[serve]"`` puts into a fresh environment on this platform.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def installed_sizes() -> dict[str, int]:
    """Bytes on disk of every distribution installed in this environment, by canonical name."""
    sizes: dict[str, int] = {}
    for dist in metadata.distributions():
        total = 0
        for file in dist.files or []:
            path = Path(dist.locate_file(file))
            if path.is_file():
                total += path.stat().st_size
        sizes[canonicalize_name(dist.metadata["Name"])] = total
    return sizes


def requirement_closure(name: str, extras: tuple[str, ...] = ()) -> set[str]:
    """The canonical names of ``name`` and of everything it requires with ``extras``, recursively.

    Environment markers are evaluated for this interpreter and platform, as pip evaluates them.
    """
    seen: set[str] = set()
    todo = [(canonicalize_name(name), frozenset(extras))]
    done: set[tuple[str, frozenset[str]]] = set()
    while todo:
        current, wanted = todo.pop()
        if (current, wanted) in done:
            continue
        done.add((current, wanted))
        seen.add(current)
        try:
            requires = metadata.requires(current) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            requirement = Requirement(text)
            environments = [{**default_environment(), "extra": extra} for extra in ("", *wanted)]
            if requirement.marker and not any(requirement.marker.evaluate(env) for env in environments):
                continue
            todo.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return seen


def closure_size_mb(name: str, extras: tuple[str, ...] = (), sizes: dict[str, int] | None = None) -> float:
    """Megabytes that ``name[extras]`` and its requirements occupy in this environment."""
    sizes = installed_sizes() if sizes is None else sizes
    return sum(sizes.get(package, 0) for package in requirement_closure(name, extras)) / 2**20
