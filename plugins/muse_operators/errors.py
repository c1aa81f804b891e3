"""Error types that carry what a user needs to act: the file, keyword or setting, and a remedy.

They subclass ValueError/RuntimeError so callers that do not know them still handle them sensibly.
"""
from __future__ import annotations


class MuseAirflowError(Exception):
    """Base class of every error this package raises on purpose."""


class RecipeParameterError(MuseAirflowError, ValueError):
    """A recipe parameter that the recipe does not have, or a value it does not accept."""


class SofError(MuseAirflowError, ValueError):
    """A set-of-frames entry that cannot be handed to esorex (missing file, bad tag)."""


class RecipeFailedError(MuseAirflowError, RuntimeError):
    """esorex exited non-zero or did not write the products it was expected to write."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message + (f"\n--- last lines of the esorex log ---\n{log_tail}" if log_tail else ""))
        self.log_tail = log_tail


class ImageError(MuseAirflowError, RuntimeError):
    """The esorex image is missing or does not carry what this package expects."""
