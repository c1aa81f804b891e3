"""Replace a small text file (plans, records, reports, caches) so that no reader ever sees half of it."""
from __future__ import annotations

import os
from pathlib import Path


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path``: a reader finds the old file or the whole new one, never a part.

    The text goes to a hidden temporary file beside ``path`` (same filesystem; named per process, so two
    writers never share one) and is renamed over ``path``. A writer that dies leaves only that file.
    """
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
