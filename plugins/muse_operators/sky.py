"""The modified sky subtraction of Zeidler et al. (2019, AJ 158, 201), as MUSEreduce's ``sky.modified``.

In fields filled with nebular emission, muse_create_sky's continuum and its atomic sky lines ([OI] 5577,
6300, 6364, NaD ...) also contain the target's own emission, and subtracting them removes real flux.
The method: set the sky continuum to zero, let muse_create_sky re-fit the lines against that zero
continuum, then keep only the molecular (OH, O2) lines, which no nebula emits. scipost then subtracts
exactly these (``--skymethod=subtract-model``).

Two plan steps run here, between the two muse_create_sky runs (see ``python_steps``); both copy the
input's headers (PRO.CATG included) so the products are recognised like a recipe's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

MOLECULAR_PREFIXES = ("OH", "O2")


def _table_hdu(hdul: fits.HDUList, column: str, path: Path) -> fits.BinTableHDU:
    for hdu in hdul[1:]:
        if isinstance(hdu, fits.BinTableHDU) and column in hdu.columns.names:
            return hdu
    raise ValueError(f"{path}: no table with a {column!r} column (is it a muse_create_sky product?)")


def zero_continuum(source: Path, target: Path) -> Path:
    """SKY_CONTINUUM with every flux set to 0 (MUSEreduce: column 2 of extension 1)."""
    with fits.open(source) as hdul:
        table = _table_hdu(hdul, "flux", source)
        table.data["flux"][:] = 0.0
        hdul[0].header["HISTORY"] = "muse-airflow: flux set to 0 (modified sky, Zeidler et al. 2019)"
        hdul.writeto(target, checksum=True)
    return target


def keep_molecular_lines(source: Path, target: Path, prefixes: tuple[str, ...] = MOLECULAR_PREFIXES) -> Path:
    """SKY_LINES with only the lines whose name starts with OH or O2 (the molecular telluric lines)."""
    with fits.open(source) as hdul:
        table = _table_hdu(hdul, "name", source)
        names = np.char.strip(np.asarray(table.data["name"]).astype(str))
        keep = np.char.startswith(names, prefixes[0])
        for prefix in prefixes[1:]:
            keep |= np.char.startswith(names, prefix)
        if not keep.any():
            raise ValueError(f"{source}: no OH or O2 line among {len(names)} sky lines; nothing would be subtracted")
        index = hdul.index_of(table.name) if table.name else hdul.index(table)
        hdul[index] = fits.BinTableHDU(data=table.data[keep], header=table.header, name=table.name)
        hdul[0].header["HISTORY"] = (f"muse-airflow: kept {int(keep.sum())} of {len(names)} lines "
                                     f"(OH/O2 only; modified sky, Zeidler et al. 2019)")
        hdul.writeto(target, checksum=True)
    return target
