"""What a finished step leaves behind so that it is never repeated: its fingerprint and its products.

After a step's products are published, ``<output_dir>/.muse_step.json`` records

* the **fingerprint**: a hash of the recipe, its parameters, the image that ran it (image ID, which
  names the image's content) and every input file's tag, path, size and modification time;
* the **products** ``{PRO.CATG: [paths]}`` with each file's size.

A later run of the same step reuses those products without starting a container when the fingerprint is
the same and every product is still there at its recorded size. Inputs that are themselves products of
reused steps keep their modification time, so a whole unchanged chain is reused, while a re-made
upstream product (new mtime) re-runs everything that reads it.

The record is written after the products (atomically, by rename) and removed before a re-run publishes,
so it never vouches for files it did not see finished. This is also what ``execute: false`` uses: the
step is not run and its recorded products are handed on, as MUSEreduce's skipped steps left theirs.

Two runs may reach the same step at once (the nightly DAG reduces the OBs of one night in parallel, and
they share that night's calibrations): :func:`step_lock` serialises them on the step's directory, so the
second waits, then finds the first one's record and reuses it instead of reducing the same frames again.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic_write import write_text_atomically
from .errors import MuseAirflowError
from .products import ProductMap, publish

RECORD_NAME = ".muse_step.json"
LOCK_NAME = ".muse_step.lock"  # as .<step dir name>.muse_step.lock in the parent


class NothingToHandOn(MuseAirflowError):
    """A step switched off in the config (``execute: false``) whose directory holds no earlier products."""


def file_identity(path: str) -> list[Any]:
    """(size, mtime_ns) of a file; a missing file gets a marker so the fingerprint still differs."""
    try:
        info = os.stat(path)
    except OSError:
        return ["missing"]
    return [info.st_size, info.st_mtime_ns]


def fingerprint(recipe: str, sof: Sequence[Sequence[str]], parameters: Mapping[str, Any], image_id: str) -> str:
    """The identity of one recipe call: same fingerprint, same products."""
    inputs = sorted([str(tag), str(path), *file_identity(str(path))] for path, tag in sof)
    payload = {"recipe": recipe, "parameters": {str(k): parameters[k] for k in sorted(parameters)},
               "image": image_id, "inputs": inputs}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class StepRecord:
    fingerprint: str
    recipe: str
    products: ProductMap
    sizes: dict[str, int]

    def intact(self) -> bool:
        """Every recorded product still exists with its recorded size (nobody cleaned or truncated it)."""
        for paths in self.products.values():
            for path in paths:
                try:
                    if os.stat(path).st_size != self.sizes.get(path):
                        return False
                except OSError:
                    return False
        return bool(self.products)


def read_record(output_dir: str | Path) -> StepRecord | None:
    """The record of the step that last finished in ``output_dir`` (None if none or unreadable)."""
    path = Path(output_dir) / RECORD_NAME
    try:
        data = json.loads(path.read_text())
        return StepRecord(data["fingerprint"], data["recipe"], data["products"], data["sizes"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_record(output_dir: str | Path, print_: str, recipe: str, products: ProductMap) -> None:
    """Record finished products (after they were published)."""
    directory = Path(output_dir)
    sizes = {p: os.stat(p).st_size for paths in products.values() for p in paths}
    data = {"fingerprint": print_, "recipe": recipe, "products": products, "sizes": sizes}
    write_text_atomically(directory / RECORD_NAME, json.dumps(data, indent=1, sort_keys=True))


def forget(output_dir: str | Path) -> None:
    """Remove the record before new products are published over the old ones."""
    try:
        (Path(output_dir) / RECORD_NAME).unlink()
    except FileNotFoundError:
        pass


def reusable(output_dir: str | Path, print_: str) -> ProductMap | None:
    """The products of an identical earlier call, if they are all still there."""
    record = read_record(output_dir)
    if record and record.fingerprint == print_ and record.intact():
        return record.products
    return None


def recorded(output_dir: str | Path) -> ProductMap | None:
    """The products of whatever call last finished here, if intact (for steps with ``execute: false``)."""
    record = read_record(output_dir)
    return record.products if record and record.intact() else None


def hand_on_recorded(output_dir: str | Path, recipe: str) -> ProductMap:
    """``execute: false``: the step's products from its last finished run; NothingToHandOn if there are none."""
    products = recorded(output_dir)
    if not products:
        raise NothingToHandOn(
            f"{recipe} is switched off in the config (execute: false) and {output_dir} holds no finished products "
            "of an earlier run; what needs them cannot run. Run it once with execute: true.")
    return products


def publish_recorded(staging_dir: Path, output_dir: Path, found: ProductMap, print_: str, recipe: str) -> ProductMap:
    """Publish a finished call's products and record them: the old record goes first, the new one last."""
    forget(output_dir)
    products = publish(staging_dir, output_dir, found)
    write_record(output_dir, print_, recipe, products)
    return products


@contextlib.contextmanager
def step_lock(output_dir: str | Path) -> Iterator[None]:
    """Hold the step's lock (``flock``) while deciding to reuse, running and publishing.

    The lock belongs to the open file, so a killed worker releases it; ``flock`` works on local disks and on
    NFSv4 (the shared product volume of a multi-machine deployment).
    """
    directory = Path(output_dir)
    directory.parent.mkdir(parents=True, exist_ok=True)
    # Beside the step's directory (like its staging directories), so a failed step leaves no empty one.
    with open(directory.parent / f".{directory.name}{LOCK_NAME}", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed, also on an exception
        yield
