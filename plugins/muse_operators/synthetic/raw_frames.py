"""Write synthetic raw frames: one primary HDU plus one CHANnn extension per IFU.

IFUs that are not simulated are written as data-less extensions with ``ESO DET CHIP LIVE = F``, so
the recipes' ``--nifu=0``/``-1`` loops skip them as dead chips (the pipeline tolerates that error) and
a file always describes all 24 IFUs, as a real MUSE file does.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from astropy.io import fits

from .detector import ReadoutModel, read_out
from .headers import FrameSpec, extension_header, primary_header

ALL_IFUS = tuple(range(1, 25))


def write_raw(path: Path, spec: FrameSpec, chips: Mapping[int, np.ndarray],
              model: ReadoutModel = ReadoutModel()) -> Path:
    """Write one raw frame; ``chips`` maps IFU number → uint16 raw image."""
    hdus: list[fits.hdu.base.ExtensionHDU | fits.PrimaryHDU] = [fits.PrimaryHDU(header=primary_header(spec))]
    for ifu in ALL_IFUS:
        if ifu in chips:
            hdus.append(fits.ImageHDU(data=chips[ifu], header=extension_header(ifu, model)))
        else:
            hdus.append(fits.ImageHDU(data=None, header=extension_header(ifu, model, live=False)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    fits.HDUList(hdus).writeto(tmp, overwrite=True, checksum=True)
    tmp.replace(path)
    return path


@functools.lru_cache(maxsize=8)
def bias_structure(seed: int, ifu: int) -> np.ndarray:
    """A fixed bias pattern of one CCD (ADU, trimmed shape): smooth gradient plus column pattern.

    Deterministic per (seed, IFU); a master bias must reproduce it, which is what tests check. Cached
    (read-only): a night's biases, flats, arcs and sky frames of one CCD all carry the same pattern, and
    computing it took 2 s per frame (25 of the 142 s that writing a one-IFU science night took, profiled).
    """
    from .detector import TRIMMED_SHAPE

    rng = np.random.default_rng([seed, ifu, 7])
    ny, nx = TRIMMED_SHAPE
    y = np.linspace(-1.0, 1.0, ny, dtype=np.float32)[:, None]
    x = np.linspace(-1.0, 1.0, nx, dtype=np.float32)[None, :]
    columns = rng.normal(0.0, 1.5, nx).astype(np.float32)[None, :]
    pattern = np.float32(3.0) * x * y
    pattern += np.float32(2.0) * y**2 + columns
    pattern.setflags(write=False)
    return pattern


def write_bias_set(
    outdir: Path,
    ifus: Sequence[int],
    count: int = 3,
    seed: int = 1,
    mjd_start: float = 60300.5,
    model: ReadoutModel = ReadoutModel(),
) -> list[Path]:
    """A bias template of ``count`` exposures (TPL NEXP = count), 40 s apart."""
    rng = np.random.default_rng(seed)
    structures = {ifu: bias_structure(seed, ifu) for ifu in ifus}
    tpl_start = FrameSpec("CALIB", "BIAS", mjd_start).date_obs[:19]
    paths = []
    for index in range(count):
        spec = FrameSpec(
            "CALIB", "BIAS", mjd_start + index * 40.0 / 86400.0,
            tpl_start=tpl_start, tpl_nexp=count, tpl_expno=index + 1,
        )
        chips = {ifu: read_out(None, rng, model, structures[ifu]) for ifu in ifus}
        paths.append(write_raw(outdir / f"{spec.archive_name}.fits", spec, chips, model))
    return paths
