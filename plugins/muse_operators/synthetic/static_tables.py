"""The static calibration tables of the synthetic instrument, and the "truth" they encode.

ESO ships these tables with the pipeline's calibration kit, which cannot be downloaded where this
project is built, so they are written here in the layouts the recipes read (column definitions in
``muse/muse_data_format_z.c``; REPORT.md §5):

* GEOMETRY_TABLE: where each CCD slice of each IFU lies in the field (muse_twilight, muse_scibasic);
* EXTINCT_TABLE: atmospheric extinction (muse_standard, muse_create_sky, muse_scipost);
* STD_FLUX_TABLE: reference spectra of standard stars (muse_standard);
* SKY_LINES: sky emission lines (muse_create_sky, muse_scipost's sky model);
* FILTER_LIST: filter curves, one extension per filter named exactly as ``--filter`` names it;
* optional (``extra_statics``): BADPIX_TABLE (a few bad columns per CCD, raw coordinates),
  ASTROMETRY_WCS (a bare header with the synthetic instrument's exact WCS: 0.2"/spaxel, no rotation) and
  VIGNETTING_MASK (a mask image over the field, its lower-left corner flagged; muse_twilight adapts it to
  the cube's size). The end-to-end tests run without them; ESO's rules give VIGNETTING_MASK only to sky
  flats taken before 2017-03-11, and the synthetic nights are later.

Every file's primary header carries ``INSTRUME = MUSE`` and ``ESO PRO CATG``, which is how ESO's
rules (and :mod:`muse_operators.classify`) recognise a static calibration. The curves (extinction,
standard star, sky lines) are made up but plausible; later synthetic science frames must be built from
the same functions so that a reduction can be compared with its input.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from .slices import N_SLICES

# kMuseGeoSliceSky (muse/muse_instrument.h): sky slice number of CCD slice k is SLICE_SKY[k - 1].
SLICE_SKY = (9, 8, 1, 10, 7, 2, 11, 6, 3, 12, 5, 4,
             21, 20, 13, 22, 19, 14, 23, 18, 15, 24, 17, 16,
             33, 32, 25, 34, 31, 26, 35, 30, 27, 36, 29, 28,
             45, 44, 37, 46, 43, 38, 47, 42, 39, 48, 41, 40)
GEOMETRY_WIDTH = 75.0  # spaxels: a slice is 75 spaxels long on the sky (kMuseSliceNominalWidth)
_MIDDLE_GAP, _OUTER_GAP = 0.04, 0.07  # spaxels between the stacks (muse_geo.h)


@dataclass(frozen=True)
class StandardStar:
    """A synthetic spectrophotometric standard; the second one exercises the recipe's nearest-star choice."""

    name: str
    ra: float  # deg
    dec: float  # deg
    flux_5500: float  # erg/s/cm²/Å at 5500 Å


STANDARD_STARS = (StandardStar("SYNTH_STD1", 150.0, -30.0, 1.0e-13), StandardStar("SYNTH_STD2", 10.0, 10.0, 2.0e-13))

# (name, group, λ [Å], flux [1e-20 erg/s/cm²/arcsec²]): approximate real sky lines, made-up fluxes.
SKY_LINE_LIST = (
    ("OI5577", 1, 5577.339, 25000.0), ("NaD1", 2, 5889.950, 3000.0), ("NaD2", 2, 5895.924, 2000.0),
    ("OI6300", 3, 6300.304, 8000.0), ("OI6364", 3, 6363.776, 2700.0), ("OH6863", 4, 6863.955, 4000.0),
    ("OH7276", 5, 7276.405, 3000.0), ("OH7316", 5, 7316.282, 4500.0), ("OH7341", 5, 7340.885, 4200.0),
    ("OH7913", 6, 7913.708, 5000.0), ("OH7993", 6, 7993.332, 6000.0), ("OH8344", 7, 8344.602, 9000.0),
    ("OH8399", 7, 8399.170, 6000.0), ("OH8430", 7, 8430.174, 5000.0), ("OH8761", 8, 8761.314, 7000.0),
    ("OH8827", 8, 8827.096, 9000.0), ("OH8886", 8, 8885.850, 8000.0), ("OH8920", 9, 8919.640, 5000.0),
    ("OH8943", 9, 8943.395, 9000.0), ("OH8988", 9, 8988.382, 6000.0),
)

# Gaussian stand-ins for the broad-band filters: name → (centre, FWHM) in Å. Names are case-sensitive.
FILTERS = {"Johnson_V": (5500.0, 850.0), "Cousins_R": (6500.0, 1300.0), "Cousins_I": (8000.0, 1500.0)}


def extinction(wavelength: np.ndarray) -> np.ndarray:
    """Atmospheric extinction [mag/airmass]: a Rayleigh-like λ⁻⁴ term plus a grey floor."""
    return 0.02 + 0.13 * (5000.0 / np.asarray(wavelength, dtype=np.float64)) ** 4


def standard_star_flux(wavelength: np.ndarray, star: StandardStar = STANDARD_STARS[0]) -> np.ndarray:
    """The reference spectrum [erg/s/cm²/Å] of a synthetic standard star (a smooth λ⁻² continuum)."""
    return star.flux_5500 * (np.asarray(wavelength, dtype=np.float64) / 5500.0) ** -2.0


def filter_throughput(name: str, wavelength: np.ndarray) -> np.ndarray:
    """Throughput (peak 1) of filter ``name`` at ``wavelength`` [Å]."""
    centre, fwhm = FILTERS[name]
    return np.exp(-0.5 * ((np.asarray(wavelength, dtype=np.float64) - centre) / (fwhm / 2.3548)) ** 2)


def sky_position(ifu: int, slice_ccd: int) -> tuple[float, float]:
    """Field position [spaxels] of the centre of CCD slice ``slice_ccd`` (1..48) of IFU ``ifu``.

    Sky slices 1-12 form stack 4 (leftmost) ... 37-48 stack 1 (rightmost), each 75 spaxels wide
    (``muse_geo.c``); an IFU is 12 slices of one spaxel each, IFU 1 at the top (the IFU order in y is
    the proof of concept's guess; the pipeline only needs it to be consistent).
    """
    sky = SLICE_SKY[slice_ccd - 1]
    stack = 4 - (sky - 1) // 12
    inner = _MIDDLE_GAP / 2 + GEOMETRY_WIDTH / 2
    outer = _MIDDLE_GAP / 2 + GEOMETRY_WIDTH + _OUTER_GAP + GEOMETRY_WIDTH / 2
    x = {4: -outer, 3: -inner, 2: inner, 1: outer}[stack]
    y = (12.5 - ifu) * 12.0 + (5.5 - (sky - 1) % 12)
    return x, y


def _primary(catg: str, comment: str) -> fits.PrimaryHDU:
    primary = fits.PrimaryHDU()
    primary.header["INSTRUME"] = "MUSE"
    primary.header["ORIGIN"] = "muse-airflow synthetic"
    primary.header["HIERARCH ESO PRO CATG"] = catg
    primary.header["COMMENT"] = comment
    return primary


def _table(columns: list[fits.Column], extname: str) -> fits.BinTableHDU:
    """A binary table whose EXTNAME is kept exactly as given (``name=`` would upper-case it)."""
    table = fits.BinTableHDU.from_columns(columns)
    table.header["EXTNAME"] = extname
    return table


def _write(path: Path, hdus: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(path, overwrite=True, checksum=True)
    return path


def write_geometry_table(path: Path, ifus: Sequence[int]) -> Path:
    """GEOMETRY_TABLE: 48 rows per IFU in ``ifus`` (SubField, SliceCCD, SliceSky, x, y, angle, width)."""
    rows = [(ifu, k, SLICE_SKY[k - 1], *sky_position(ifu, k))
            for ifu in sorted(set(ifus)) for k in range(1, N_SLICES + 1)]
    n = len(rows)
    columns = [
        fits.Column("SubField", "J", array=[r[0] for r in rows]),
        fits.Column("SliceCCD", "J", array=[r[1] for r in rows]),
        fits.Column("SliceSky", "J", array=[r[2] for r in rows]),
        fits.Column("x", "D", unit="pix", array=[r[3] for r in rows]),
        fits.Column("y", "D", unit="pix", array=[r[4] for r in rows]),
        fits.Column("angle", "D", unit="deg", array=np.zeros(n)),
        fits.Column("width", "D", unit="pix", array=np.full(n, GEOMETRY_WIDTH)),
        fits.Column("xerr", "D", unit="pix", array=np.full(n, 0.01)),
        fits.Column("yerr", "D", unit="pix", array=np.full(n, 0.01)),
        fits.Column("angleerr", "D", unit="deg", array=np.full(n, 0.01)),
        fits.Column("widtherr", "D", unit="pix", array=np.full(n, 0.01)),
    ]
    return _write(path, [_primary("GEOMETRY_TABLE", "Synthetic MUSE WFM slice geometry."),
                         _table(columns, "GEOMETRY_TABLE")])


def write_extinction_table(path: Path) -> Path:
    """EXTINCT_TABLE: extinction [mag/airmass] every 10 Å over 3000..11000 Å."""
    lam = np.arange(3000.0, 11001.0, 10.0)
    columns = [fits.Column("lambda", "D", unit="Angstrom", array=lam),
               fits.Column("extinction", "D", unit="mag/airmass", array=extinction(lam))]
    return _write(path, [_primary("EXTINCT_TABLE", "Synthetic extinction curve."), _table(columns, "EXTINCTION")])


def write_std_flux_table(path: Path) -> Path:
    """STD_FLUX_TABLE: one extension per standard star, with its RA/DEC (the recipe takes the nearest)."""
    lam = np.arange(4000.0, 10001.0, 2.0)
    hdus: list = [_primary("STD_FLUX_TABLE", "Synthetic standard-star spectra.")]
    for star in STANDARD_STARS:
        flux = standard_star_flux(lam, star)
        table = _table([fits.Column("lambda", "D", unit="Angstrom", array=lam),
                        fits.Column("flux", "D", unit="erg/s/cm**2/Angstrom", array=flux),
                        fits.Column("fluxerr", "D", unit="erg/s/cm**2/Angstrom", array=0.01 * flux)], star.name)
        table.header["RA"] = (star.ra, "[deg] star position")
        table.header["DEC"] = (star.dec, "[deg] star position")
        hdus.append(table)
    return _write(path, hdus)


def write_sky_lines(path: Path) -> Path:
    """SKY_LINES: extension LINES with name, group, lambda, flux, dq."""
    lines = SKY_LINE_LIST
    columns = [fits.Column("name", "16A", array=[s[0] for s in lines]),
               fits.Column("group", "J", array=[s[1] for s in lines]),
               fits.Column("lambda", "D", unit="Angstrom", array=[s[2] for s in lines]),
               fits.Column("flux", "D", unit="10**(-20)*erg/(s cm^2 arcsec^2)", array=[s[3] for s in lines]),
               fits.Column("dq", "J", array=np.zeros(len(lines), dtype=np.int32))]
    return _write(path, [_primary("SKY_LINES", "Synthetic sky emission lines."), _table(columns, "LINES")])


def write_filter_list(path: Path) -> Path:
    """FILTER_LIST: one extension per filter, EXTNAME = the filter's case-sensitive name."""
    lam = np.arange(4500.0, 9500.0, 5.0)
    hdus: list = [_primary("FILTER_LIST", "Synthetic Gaussian filter curves.")]
    for name in FILTERS:
        hdus.append(_table([fits.Column("lambda", "D", unit="Angstrom", array=lam),
                            fits.Column("throughput", "D", array=filter_throughput(name, lam))], name))
    return _write(path, hdus)


def write_badpix_table(path: Path, ifus: Sequence[int]) -> Path:
    """BADPIX_TABLE: one extension per CHANnn with xpos, ypos (untrimmed raw pixels), status, value."""
    hdus: list = [_primary("BADPIX_TABLE", "Synthetic bad pixels: two hot pixels per CCD.")]
    for ifu in sorted(set(ifus)):
        xs, ys = [1000 + ifu, 3000 + ifu], [1500, 2500]
        table = _table([fits.Column("xpos", "J", unit="pix", array=xs),
                        fits.Column("ypos", "J", unit="pix", array=ys),
                        fits.Column("status", "J", array=[1 << 6, 1 << 6]),  # Euro3D: hot pixel
                        fits.Column("value", "E", unit="count", array=[0.0, 0.0])], f"CHAN{ifu:02d}")
        hdus.append(table)
    return _write(path, hdus)


def write_astrometry_wcs(path: Path) -> Path:
    """ASTROMETRY_WCS: a bare header (no data) holding the WFM astrometric solution (muse_astrometry's product)."""
    primary = _primary("ASTROMETRY_WCS", "Synthetic WFM astrometry: the exact default.")
    header = primary.header
    header["HIERARCH ESO INS OPTI2 NAME"] = "WFM"
    for key, value in (("WCSAXES", 2), ("CRPIX1", 0.0), ("CRPIX2", 0.0), ("CD1_1", -0.2 / 3600), ("CD1_2", 0.0),
                       ("CD2_1", 0.0), ("CD2_2", 0.2 / 3600), ("CTYPE1", "RA---TAN"), ("CTYPE2", "DEC--TAN"),
                       ("CUNIT1", "deg"), ("CUNIT2", "deg")):
        header[key] = value
    return _write(path, [primary])


def write_vignetting_mask(path: Path) -> Path:
    """VIGNETTING_MASK: an 8-bit mask image in the primary HDU (``muse_mask_load``), 1 = vignetted."""
    mask = np.zeros((300, 300), dtype=np.uint8)
    mask[:20, :40] = 1  # the WFM field's lower-left corner, where the real instrument was vignetted
    primary = fits.PrimaryHDU(data=mask)
    primary.header["INSTRUME"] = "MUSE"
    primary.header["HIERARCH ESO PRO CATG"] = "VIGNETTING_MASK"
    primary.header["COMMENT"] = "Synthetic WFM vignetting mask (format only)."
    return _write(path, [primary])
