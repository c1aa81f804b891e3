"""Arc lamps: their line lists, the wavelength solution that puts the lines on the CCD, and LINE_CATALOG.

``muse_wavecal`` detects arc lines along each slice, identifies them by pattern matching against the
LINE_CATALOG and fits λ(x, y) per slice. What it needs (``muse/muse_wavecalib.c``, REPORT.md §2, §5):

* the lamp of each exposure, from ``ESO INS LAMPi NAME/ST`` and ``ESO INS SHUTi ST`` (both T for a lamp
  that is on); ``CU-LAMP3``/``CU-LAMP6`` are Ne, ``CU-LAMP4`` Xe, ``CU-LAMP5`` HgCd (``muse_utils.c``);
* λ increasing with CCD y at 1.25 Å/px ± 5 % (``cpl_ppm_match_positions`` gets no zero point, only
  the dispersion), so dλ/dy must stay within 1.19..1.31 Å/px;
* a catalog (primary header ``VERSION = 3``; columns lambda, flux, ion, quality) sorted by λ, with at
  least one quality-5 (FWHM reference) line, and fluxes on the scale of the measured line areas:
  lines with catalog flux below 1.15 × the faintest detection are not matched.

The wavelengths below are approximately the real air wavelengths of Ne I, Xe I, Hg I and Cd I lines,
typed from memory for this synthetic instrument: close enough for a realistic pattern, not a
reference. A line's flux is the electrons it puts into one CCD column per exposure, and the catalog
carries that same number, so catalog and detections share one scale by construction.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from .detector import TRIMMED_SHAPE

# The MUSE calibration unit's lamps (ESO INS LAMPn NAME = CU-LAMPn); 1 and 2 are the continuum
# (flat-field) lamps (a guess: the pipeline never reads them), 3..6 the arc lamps muse_utils.c knows.
N_LAMPS = 6
CONTINUUM_LAMPS = (1, 2)
ARC_LAMPS = {"HgCd": 5, "Ne": 3, "Xe": 4}  # lamp → CU-LAMP number (CU-LAMP6 is a second Ne lamp)

# λ(y) = CENTRE_WAVELENGTH + DISPERSION·(y - CENTRE_ROW) + CURVATURE·(y - CENTRE_ROW)², y 1-based.
CENTRE_ROW = (TRIMMED_SHAPE[0] + 1) / 2.0  # 2056.5
CENTRE_WAVELENGTH = 7020.0  # Å
DISPERSION = 1.25  # Å/px at CENTRE_ROW (kMuseSpectralSamplingA)
CURVATURE = 5.0e-6  # Å/px²: dλ/dy runs from 1.229 to 1.271 Å/px over the CCD
LINE_FWHM = 2.61  # Å, the slit-width-limited line width (kMuseSliceSlitWidthA)
ARC_CONTINUUM = 2.0  # e- per pixel: the lamps' faint continuum under the lines

_LINE_SEED = 1989  # fixed: a line's brightness is a property of the lamp, not of an exposure set
_FLUX_RANGE = (3.5, 4.7)  # log10 e- per column: peaks ~1.4e3..2.2e4 e-, far from saturation
_QUALITY5_MIN_FLUX = 15000.0
_QUALITY5_ISOLATION = 20.0  # Å to the nearest other line

_LINES: dict[str, tuple[tuple[float, str], ...]] = {
    "HgCd": ((4678.149, "CdI"), (4799.912, "CdI"), (4916.068, "HgI"), (5085.822, "CdI"), (5460.735, "HgI"),
             (5769.598, "HgI"), (5790.663, "HgI"), (6438.470, "CdI"), (6907.460, "HgI"), (7091.860, "HgI")),
    "Ne": ((5400.562, "NeI"), (5764.419, "NeI"), (5852.488, "NeI"), (5881.895, "NeI"), (5944.834, "NeI"),
           (6029.997, "NeI"), (6074.338, "NeI"), (6143.063, "NeI"), (6163.594, "NeI"), (6217.281, "NeI"),
           (6266.495, "NeI"), (6304.789, "NeI"), (6334.428, "NeI"), (6382.992, "NeI"), (6402.246, "NeI"),
           (6506.528, "NeI"), (6532.882, "NeI"), (6598.953, "NeI"), (6678.276, "NeI"), (6717.043, "NeI"),
           (6929.467, "NeI"), (7032.413, "NeI"), (7173.938, "NeI"), (7245.167, "NeI"), (7438.899, "NeI"),
           (7488.871, "NeI"), (7535.774, "NeI"), (8082.458, "NeI"), (8136.406, "NeI"), (8300.326, "NeI"),
           (8377.607, "NeI"), (8418.427, "NeI"), (8495.360, "NeI"), (8591.259, "NeI"), (8634.647, "NeI"),
           (8654.383, "NeI"), (8780.622, "NeI"), (8853.867, "NeI"), (9148.672, "NeI"), (9201.759, "NeI")),
    "Xe": ((4624.276, "XeI"), (4671.226, "XeI"), (4697.020, "XeI"), (4734.152, "XeI"), (4807.019, "XeI"),
           (4829.709, "XeI"), (4843.294, "XeI"), (4923.152, "XeI"), (5028.280, "XeI"), (7119.598, "XeI"),
           (7642.025, "XeI"), (7887.393, "XeI"), (7967.341, "XeI"), (8061.339, "XeI"), (8206.336, "XeI"),
           (8231.634, "XeI"), (8280.116, "XeI"), (8346.822, "XeI"), (8409.189, "XeI"), (8819.410, "XeI"),
           (8952.251, "XeI"), (9045.446, "XeI"), (9162.652, "XeI")),
}


@dataclass(frozen=True)
class ArcLine:
    """One lamp line as the synthetic instrument shows it and the catalog describes it."""

    wavelength: float  # Å (approximate air wavelength)
    ion: str  # e.g. "NeI"; the pipeline derives the lamp from it
    lamp: str  # HgCd | Ne | Xe
    flux: float  # electrons in one CCD column per exposure (the Gaussian area muse_wavecal measures)
    quality: int  # 3 good, 5 good and FWHM reference (muse_data_format_z.c)


def _build_lines() -> tuple[ArcLine, ...]:
    rng = np.random.default_rng(_LINE_SEED)
    raw = []
    for lamp in sorted(_LINES):
        fluxes = 10.0 ** rng.uniform(*_FLUX_RANGE, len(_LINES[lamp]))
        raw += [(wavelength, ion, lamp, round(float(flux), 1))
                for (wavelength, ion), flux in zip(_LINES[lamp], fluxes, strict=True)]
    raw.sort()
    waves = np.array([r[0] for r in raw])
    lines = []
    for i, (wavelength, ion, lamp, flux) in enumerate(raw):
        isolation = float(np.min(np.abs(np.delete(waves, i) - wavelength)))
        quality = 5 if flux >= _QUALITY5_MIN_FLUX and isolation > _QUALITY5_ISOLATION else 3
        lines.append(ArcLine(wavelength, ion, lamp, flux, quality))
    return tuple(lines)


ARC_LINES: tuple[ArcLine, ...] = _build_lines()  # sorted by wavelength


def lamp_lines(lamp: str) -> tuple[ArcLine, ...]:
    """The lines of one lamp (HgCd, Ne or Xe)."""
    if lamp not in ARC_LAMPS:
        raise ValueError(f"unknown arc lamp {lamp!r}; known: {', '.join(sorted(ARC_LAMPS))}")
    return tuple(line for line in ARC_LINES if line.lamp == lamp)


def wavelength(y: np.ndarray | float) -> np.ndarray:
    """λ [Å] at 1-based CCD row ``y`` (the same for every column: no line tilt or curvature)."""
    u = np.asarray(y, dtype=np.float64) - CENTRE_ROW
    return CENTRE_WAVELENGTH + DISPERSION * u + CURVATURE * u * u


def dispersion(y: np.ndarray | float) -> np.ndarray:
    """dλ/dy [Å/px] at row ``y``."""
    return DISPERSION + 2.0 * CURVATURE * (np.asarray(y, dtype=np.float64) - CENTRE_ROW)


def row_of(wavelength_a: np.ndarray | float) -> np.ndarray:
    """The 1-based row where λ falls: the exact inverse of :func:`wavelength` (numerically stable form)."""
    d = np.asarray(wavelength_a, dtype=np.float64) - CENTRE_WAVELENGTH
    return CENTRE_ROW + 2.0 * d / (DISPERSION + np.sqrt(DISPERSION**2 + 4.0 * CURVATURE * d))


def line_sigma_rows(wavelength_a: float) -> float:
    """Gaussian σ of a line in rows: the 2.61 Å slit width over the local dispersion."""
    return LINE_FWHM / (2.0 * math.sqrt(2.0 * math.log(2.0))) / float(dispersion(row_of(wavelength_a)))


def observed_line_fwhm(wavelength_a: float) -> float:
    """FWHM [Å] a line shows once binned into pixels: the 2.61 Å Gaussian widened by a one-pixel box.

    This is what muse_wavecal and muse_lsf measure (their QC ``LINES FWHM`` / ``LSF FWHM``): the box
    adds its variance dλ²/12 to the Gaussian's.
    """
    step = float(dispersion(row_of(wavelength_a)))
    return math.sqrt(LINE_FWHM**2 + 8.0 * math.log(2.0) * step**2 / 12.0)


def line_fractions(wavelength_a: float, rows: int = TRIMMED_SHAPE[0]) -> tuple[int, np.ndarray]:
    """(first row index, fraction of a line's flux in each row) for a line at ``wavelength_a``.

    The line is a Gaussian (the slit-width LSF) integrated over every pixel, evaluated within ±8σ,
    where all of its light falls. Arcs, sky lines and nebular lines are all spread this way, so the
    LSF muse_lsf measures on the arcs is the one the sky and the science lines have.
    """
    centre, sigma = float(row_of(wavelength_a)), line_sigma_rows(wavelength_a)
    lo, hi = max(1, math.floor(centre - 8 * sigma)), min(rows, math.ceil(centre + 8 * sigma))
    if hi < lo:
        return 0, np.zeros(0)
    bounds = np.arange(lo, hi + 2) - 0.5  # pixel boundaries of rows lo..hi
    cdf = np.array([0.5 * math.erf((b - centre) / (math.sqrt(2.0) * sigma)) for b in bounds])
    return lo - 1, np.diff(cdf)


def arc_spectrum(lamp: str, rows: int = TRIMMED_SHAPE[0]) -> np.ndarray:
    """Electrons per pixel along one fully illuminated column of an exposure of ``lamp``.

    Each line is spread over rows by :func:`line_fractions`, so the column sums to the line's flux.
    """
    spectrum = np.full(rows, ARC_CONTINUUM, dtype=np.float64)
    for line in lamp_lines(lamp):
        start, fractions = line_fractions(line.wavelength, rows)
        spectrum[start:start + len(fractions)] += line.flux * fractions
    return spectrum


def lamp_keywords(lamps_on: Iterable[int]) -> dict[str, Any]:
    """``ESO INS LAMPn NAME/ST`` and ``ESO INS SHUTn NAME/ST`` for all six lamps, ``lamps_on`` lit.

    The pipeline counts a lamp as on only if both its ST and its shutter ST are T (``muse_pfits.c``).
    """
    on = set(lamps_on)
    unknown = on - set(range(1, N_LAMPS + 1))
    if unknown:
        raise ValueError(f"no lamp number(s) {sorted(unknown)}; MUSE has CU-LAMP1..{N_LAMPS}")
    keywords: dict[str, Any] = {"ESO INS LAMPNUM": N_LAMPS}
    for n in range(1, N_LAMPS + 1):
        keywords[f"ESO INS LAMP{n} NAME"] = f"CU-LAMP{n}"
        keywords[f"ESO INS LAMP{n} ST"] = n in on
        keywords[f"ESO INS SHUT{n} NAME"] = f"CU-SHUT{n}"
        keywords[f"ESO INS SHUT{n} ST"] = n in on
    return keywords


def write_line_catalog(path: Path) -> Path:
    """The LINE_CATALOG of the synthetic lamps (one binary table, sorted by λ, VERSION = 3)."""
    lines = ARC_LINES
    columns = [
        fits.Column("lambda", "E", unit="Angstrom", array=[line.wavelength for line in lines]),
        fits.Column("flux", "E", array=[line.flux for line in lines]),
        fits.Column("ion", "8A", array=[line.ion for line in lines]),
        fits.Column("quality", "J", array=[line.quality for line in lines]),
        fits.Column("comment", "16A", array=[f"synthetic {line.lamp}" for line in lines]),
    ]
    primary = fits.PrimaryHDU()
    primary.header["INSTRUME"] = "MUSE"
    primary.header["VERSION"] = (3, "LINE_CATALOG format version")
    primary.header["HIERARCH ESO PRO CATG"] = "LINE_CATALOG"
    primary.header["COMMENT"] = "Synthetic MUSE arc lines: approximate air wavelengths, not a reference."
    table = fits.BinTableHDU.from_columns(columns)
    table.header["EXTNAME"] = "LINES"
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([primary, table]).writeto(path, overwrite=True, checksum=True)
    return path
