"""Tile-compress raw frames the way the ESO archive ships them (``MUSE.<DATE-OBS>.fits.fz``, fpack RICE_1).

The archive delivers most MUSE raw files fpack-compressed: the primary header stays a plain HDU, each
CCD image becomes a tile-compressed binary table (``ZIMAGE = T``) with the image header inside, and
data-less extensions stay as they are. RICE on integers is lossless, so the pixels are unchanged.
"""
from __future__ import annotations

import json
from pathlib import Path

from astropy.io import fits


def fpack(path: Path) -> Path:
    """Write ``<path>.fz`` (RICE_1 tiles per image extension) and remove ``path``; return the new path."""
    target = path.with_name(path.name + ".fz")
    with fits.open(path) as hdul:
        hdus: list = [fits.PrimaryHDU(header=hdul[0].header)]
        for hdu in hdul[1:]:
            if isinstance(hdu, fits.ImageHDU) and hdu.data is not None:
                hdus.append(fits.CompImageHDU(data=hdu.data, header=hdu.header, compression_type="RICE_1"))
            else:
                hdus.append(hdu.copy())
        tmp = target.with_name(target.name + ".part")
        fits.HDUList(hdus).writeto(tmp, overwrite=True, checksum=True)
    tmp.replace(target)
    path.unlink()
    return target


def fpack_night(raw_dir: Path) -> list[Path]:
    """Compress every ``MUSE.*.fits`` of a synthetic night and rename them in its manifest."""
    packed = [fpack(path) for path in sorted(raw_dir.glob("MUSE.*.fits"))]
    manifest_path = raw_dir / "manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        for exposure in manifest["exposures"]:
            exposure["file"] += ".fz"
        for night in manifest["nights"]:
            night["calibrations"] = {tag: [name + ".fz" for name in names]
                                     for tag, names in night["calibrations"].items()}
        manifest_path.write_text(json.dumps(manifest, indent=1))
    return packed
