"""Recipe products: find them by ``ESO PRO CATG``, check the expected ones, publish them atomically.

A product's identity is its PRO.CATG header keyword, not its file name: esorex names files after the
category but appends IFU or exposure counters (``MASTER_BIAS-01.fits``, ``PIXTABLE_OBJECT_0001-01.fits``).
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from .errors import RecipeFailedError

ProductMap = dict[str, list[str]]


def product_category(path: Path) -> str | None:
    """The ``ESO PRO CATG`` of a FITS file, or None if it has none (then it is not a product)."""
    from astropy.io import fits  # imported here: DAG files import this module and must parse fast

    try:
        return fits.getval(path, "HIERARCH ESO PRO CATG", ext=0)
    except (KeyError, OSError):
        return None


def listed_products(staging_dir: Path, products_list: str) -> list[Path]:
    """The files esorex reports in ``--products-sof`` (JSON); every FITS file if that list is missing."""
    listing = staging_dir / products_list
    if listing.is_file():
        try:
            entries = json.loads(listing.read_text())
            return [staging_dir / Path(e["name"]).name for e in entries]
        except (ValueError, KeyError, TypeError):
            pass
    return sorted(staging_dir.glob("*.fits"))


def categorise(paths: Iterable[Path]) -> ProductMap:
    """Group product files by PRO.CATG, in sorted path order within a category."""
    found: ProductMap = {}
    for path in sorted(paths):
        category = product_category(path)
        if category:
            found.setdefault(category, []).append(str(path))
    return found


def check_expected(found: ProductMap, expected: Iterable[str], recipe: str, log_tail: str = "") -> None:
    """Raise RecipeFailedError naming the missing categories; esorex can exit 0 and still write nothing."""
    missing = [category for category in expected if category not in found]
    if missing:
        got = ", ".join(sorted(found)) or "nothing"
        raise RecipeFailedError(
            f"{recipe} exited 0 but did not write {', '.join(missing)} (it wrote: {got})", log_tail
        )


def publish(staging_dir: Path, output_dir: Path, found: ProductMap) -> ProductMap:
    """Move the staging directory's files into ``output_dir`` and return the products' final paths.

    Each file is moved with ``os.replace`` (atomic on one filesystem) and products go last, after the
    SOF and log, so a reader that sees a product also finds its provenance.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    products = {Path(p) for paths in found.values() for p in paths}
    others = [p for p in staging_dir.iterdir() if p not in products]
    for path in sorted(others) + sorted(products):
        os.replace(path, output_dir / path.name)
    staging_dir.rmdir()
    return {category: [str(output_dir / Path(p).name) for p in paths] for category, paths in found.items()}


def discard(staging_dir: Path) -> Path | None:
    """Keep a failed run's log and SOF for diagnosis, delete its partial FITS products.

    The directory is renamed from ``.NAME.staging-X`` to ``.NAME.failed-X`` so it can never be
    mistaken for a finished product directory. Returns the new location (None if nothing remained).
    """
    if not staging_dir.is_dir():
        return None
    for path in staging_dir.iterdir():
        if path.suffix in {".fits", ".fz", ".gz"} or path.name.endswith(".fits.fz"):
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
    failed = staging_dir.with_name(staging_dir.name.replace(".staging-", ".failed-"))
    os.replace(staging_dir, failed)
    return failed
