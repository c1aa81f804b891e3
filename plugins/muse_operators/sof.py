"""Sets of frames (SOF): the ``<path> <TAG>`` files esorex reads to know its inputs.

A SOF is rendered from typed entries, never from free text, so a path with spaces or a tag with a typo
is caught here, naming the entry, before esorex sees it.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SofError

_TAG = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass(frozen=True)
class SofEntry:
    """One input frame of a recipe: an absolute path and the pipeline tag (DO.CATG) it is given."""

    path: str
    tag: str

    @classmethod
    def coerce(cls, item: SofEntry | Mapping[str, Any] | Sequence[str]) -> SofEntry:
        """Accept a SofEntry, a ``{"path": ..., "tag": ...}`` mapping or a ``(path, tag)`` pair.

        XComs and Airflow Params carry plain JSON, so operators receive the latter two forms.
        """
        if isinstance(item, SofEntry):
            return item
        if isinstance(item, Mapping):
            return cls(str(item["path"]), str(item["tag"]))
        if isinstance(item, (list, tuple)) and len(item) == 2:
            return cls(str(item[0]), str(item[1]))
        raise SofError(f"cannot read a SOF entry from {item!r}; give (path, tag) or {{'path','tag'}}")

    def check(self, must_exist: bool = True) -> None:
        """Raise SofError if esorex could not use this entry."""
        if not _TAG.match(self.tag):
            raise SofError(f"SOF tag {self.tag!r} for {self.path} is not a pipeline tag (e.g. BIAS, MASTER_BIAS)")
        if not Path(self.path).is_absolute():
            raise SofError(f"SOF path {self.path!r} ({self.tag}) must be absolute")
        if any(ch.isspace() for ch in self.path):
            raise SofError(f"SOF path {self.path!r} ({self.tag}) contains white space, which esorex cannot read")
        if must_exist and not Path(self.path).is_file():
            raise SofError(f"SOF input {self.path} ({self.tag}) does not exist or is not a file")


def coerce_entries(items: Iterable[Any]) -> list[SofEntry]:
    return [SofEntry.coerce(item) for item in items]


def render_sof(entries: Iterable[SofEntry], must_exist: bool = True) -> str:
    """The SOF file's text: one ``path TAG`` line per entry, in the given order."""
    lines = []
    for entry in entries:
        entry.check(must_exist=must_exist)
        lines.append(f"{entry.path} {entry.tag}")
    if not lines:
        raise SofError("a SOF needs at least one input frame")
    return "\n".join(lines) + "\n"


def input_directories(entries: Iterable[SofEntry]) -> list[Path]:
    """The distinct parent directories of the inputs, for read-only mounts."""
    return sorted({Path(entry.path).parent for entry in entries})


TEMPLATE_DIR_ENV = "MUSE_AIRFLOW_SOF_TEMPLATES"
_TEMPLATE_LINE = re.compile(r"^\{([A-Z][A-Z0-9_]*)\}")


def template_dir() -> Path:
    """``include/sof_templates`` of this checkout, or ``$MUSE_AIRFLOW_SOF_TEMPLATES``."""
    import os

    override = os.environ.get(TEMPLATE_DIR_ENV)
    return Path(override) if override else Path(__file__).resolve().parents[2] / "include" / "sof_templates"


def template_tags(recipe: str) -> list[str]:
    """The tags of a recipe's SOF template, in the order they are written."""
    path = template_dir() / f"{recipe}.sof"
    if not path.is_file():
        raise SofError(f"no SOF template for {recipe} ({path}); add one to include/sof_templates/")
    return [m.group(1) for line in path.read_text().splitlines() if (m := _TEMPLATE_LINE.match(line.strip()))]


def render_from_template(recipe: str, entries: Iterable[SofEntry], must_exist: bool = True) -> str:
    """Render a recipe's SOF in its template's tag order; a tag the template lacks is an error."""
    order = template_tags(recipe)
    rank = {tag: index for index, tag in enumerate(order)}
    items = list(entries)
    unknown = sorted({e.tag for e in items if e.tag not in rank})
    if unknown:
        raise SofError(f"{recipe} does not take {', '.join(unknown)}; its SOF tags are {', '.join(order)}")
    return render_sof(sorted(items, key=lambda e: rank[e.tag]), must_exist=must_exist)


def render_for(recipe: str, entries: Iterable[SofEntry], must_exist: bool = True) -> str:
    """The SOF of ``recipe``: by its template when there is one, else in the given order."""
    if (template_dir() / f"{recipe}.sof").is_file():
        return render_from_template(recipe, entries, must_exist)
    return render_sof(entries, must_exist)


def read_sof(path: str | Path) -> list[SofEntry]:
    """The entries of a SOF file written or edited by hand (``create_sof: false``).

    Blank lines and ``#`` comments are skipped; every other line must be ``<absolute path> <TAG>``
    (an optional third word, esorex's group, is ignored). Errors name the file and the line.
    """
    source = Path(path)
    try:
        text = source.read_text()
    except OSError as exc:
        raise SofError(f"cannot read the SOF {source}: {exc.strerror or exc}; set create_sof to true to have "
                       "it written from the plan") from None
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) not in (2, 3):
            raise SofError(f"{source}, line {number}: expected '<path> <TAG>', got {line.strip()!r}")
        entry = SofEntry(words[0], words[1])
        try:
            entry.check()
        except SofError as exc:
            raise SofError(f"{source}, line {number}: {exc}") from None
        entries.append(entry)
    if not entries:
        raise SofError(f"the SOF {source} lists no input frame")
    return entries
