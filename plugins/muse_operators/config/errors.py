"""The one error the configuration layer raises: every problem of a config file, all at once.

A user fixing a config should see every mistake in one run, not one per attempt, so the problems are
collected into ``.problems`` (one self-contained sentence each, naming the setting) and the message
lists them all.
"""
from __future__ import annotations

from collections.abc import Iterable

from ..errors import MuseAirflowError


class ConfigError(MuseAirflowError, ValueError):
    """A configuration that cannot be used; ``.problems`` holds one message per mistake."""

    def __init__(self, problems: Iterable[str], source: str = "") -> None:
        self.problems: list[str] = list(problems)
        self.source = source
        where = f"configuration {source}" if source else "configuration"
        count = len(self.problems)
        heading = f"{where} has {count} problem{'s' if count != 1 else ''}:"
        super().__init__("\n".join([heading, *(f"  - {p}" for p in self.problems)]))
