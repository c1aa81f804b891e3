"""The 48 slices of one MUSE CCD: where they fall on the detector and how a lamp illuminates them.

MUSE's image slicer cuts each IFU's field into 48 slices whose spectra lie side by side on the CCD,
as near-vertical bands ~78 px wide with wavelength running along y. ``muse_flat`` finds them by
tracing a lamp flat, and its search only accepts what the real instrument looks like
(``muse/muse_tracing.c`` with the constants of ``muse/muse_instrument.h``):

* 48 slices per CCD (``kMuseSlicesPerCCD``);
* the first slice edge within the first 200 px (``kMuseSliceSearchRegion``);
* slice widths between 72.2 and 82.2 px (``kMuseSliceLo/HiLikelyWidth``), centres at least that far apart.

So the synthetic geometry is a 78 px band every 84.5 px (the proof of concept that ran the real
recipes used exactly that, see ``/work/shared/reference/synthetic-muse/REPORT.md`` §2), varied a
little per IFU (a real instrument's 24 CCDs are not identical, and code must not assume they are),
with a small tilt. Slice curvature and x-dependent widths are not modelled.

Coordinates are the pipeline's: 1-based pixels as in FITS and CPL, pixel ``i`` covering
``[i - 0.5, i + 0.5]``; ``x`` runs along a CCD row (4096 px), ``y`` along the dispersion (4112 px).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .detector import TRIMMED_SHAPE

N_SLICES = 48
NOMINAL_WIDTH = 78.0  # px; the tracing accepts 72.2..82.2
NOMINAL_PITCH = 84.5  # px from one slice's left edge to the next
TRACE_WIDTH_WINDOW = (72.2, 82.2)  # kMuseSliceLoLikelyWidth, kMuseSliceHiLikelyWidth
FIRST_EDGE_LIMIT = 200.0  # kMuseSliceSearchRegion
REFERENCE_ROW = (TRIMMED_SHAPE[0] + 1) / 2.0  # 2056.5, the CCD's centre row, where `left` is given
EDGE_SCALE = 0.4  # px; logistic softness of a slice edge (10-90 % over ~1.8 px)
STRAY_LEVEL = 0.005  # scattered light between slices, as a fraction of the in-slice level
PIXEL_RESPONSE_RMS = 0.01  # pixel-to-pixel sensitivity variation (the structure a flat field removes)

_GEOMETRY_SEED = 20140101  # fixed: geometry is a property of the instrument, not of a frame set
_FINE_STEP = 0.01  # px; sampling of the tabulated cross-slice profile


@dataclass(frozen=True, eq=False)
class SliceGeometry:
    """Slice positions on one IFU's CCD; edges move by ``tilt`` px per row away from ``REFERENCE_ROW``."""

    ifu: int
    left: np.ndarray  # (48,) left edge at REFERENCE_ROW, CCD slice order (SliceCCD 1..48)
    width: np.ndarray  # (48,) px
    tilt: float  # px per row

    def shift(self, y: np.ndarray | float) -> np.ndarray:
        """Horizontal displacement of every edge at row(s) ``y`` relative to ``REFERENCE_ROW``."""
        return self.tilt * (np.asarray(y, dtype=np.float64) - REFERENCE_ROW)

    def edges(self, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """(left, right) edges at row(s) ``y``; shape ``(*np.shape(y), 48)``."""
        offset = self.shift(y)[..., None]
        return self.left + offset, self.left + self.width + offset

    def centres(self, y: np.ndarray | float) -> np.ndarray:
        """Slice centres at row(s) ``y`` (what TRACE_TABLE's centre polynomials describe)."""
        left, right = self.edges(y)
        return 0.5 * (left + right)

    def locate(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(CCD slice number 1..48, or 0 in a gap; offset from that slice's centre in px) per pixel.

        The inverse a sky-illuminated forward model needs: which slice, and where across it, a pixel sees.
        """
        x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
        local = x - self.shift(y)  # position at REFERENCE_ROW
        index = np.clip(np.searchsorted(self.left, local, side="right") - 1, 0, N_SLICES - 1)
        inside = (local >= self.left[index]) & (local < self.left[index] + self.width[index])
        offset = local - (self.left[index] + 0.5 * self.width[index])
        return np.where(inside, index + 1, 0), np.where(inside, offset, np.nan)

    def profile(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, value): the pixel-integrated cross-slice profile at ``REFERENCE_ROW``, finely tabulated.

        A slice is a box with logistic edges; a pixel at centre ``x`` receives the box integrated over
        ``[x-0.5, x+0.5]``, in closed form (the logistic's integral is ``s*log(1+e^(u/s))``). Each
        pixel sees at most its own slice and the neighbours, so only those three are summed.
        """
        x = np.arange(0.0, TRIMMED_SHAPE[1] + 2.0, _FINE_STEP)
        nearest = np.clip(np.searchsorted(self.left + 0.5 * self.width, x), 0, N_SLICES - 1)
        value = np.zeros_like(x)
        for step in (-1, 0, 1):
            k = np.clip(nearest + step, 0, N_SLICES - 1)
            unique = (nearest + step >= 0) & (nearest + step < N_SLICES)
            left, right = self.left[k], self.left[k] + self.width[k]
            value += np.where(unique, _box_integral(x, left, right), 0.0)
        return x, value

    def illumination(self, stray: float = STRAY_LEVEL) -> np.ndarray:
        """Relative illumination of the trimmed CCD (float32, 1 inside slices, ``stray`` in the gaps)."""
        xf, pf = self.profile()
        x = np.arange(1, TRIMMED_SHAPE[1] + 1, dtype=np.float64)
        image = np.empty(TRIMMED_SHAPE, dtype=np.float32)
        for row in range(TRIMMED_SHAPE[0]):
            image[row] = np.interp(x - float(self.shift(row + 1)), xf, pf)
        image *= 1.0 - stray
        image += stray
        return image


def _box_integral(x: np.ndarray, left: np.ndarray, right: np.ndarray, scale: float = EDGE_SCALE) -> np.ndarray:
    """Integral over ``[x-0.5, x+0.5]`` of a unit box ``[left, right]`` with logistic edges."""

    def ramp(u: np.ndarray) -> np.ndarray:  # antiderivative of the logistic step 1/(1+exp(-u/s))
        return scale * np.logaddexp(0.0, u / scale)

    return (ramp(x + 0.5 - left) - ramp(x - 0.5 - left)) - (ramp(x + 0.5 - right) - ramp(x - 0.5 - right))


@lru_cache(maxsize=32)
def slice_geometry(ifu: int) -> SliceGeometry:
    """The fixed slice geometry of IFU ``ifu`` (1..24): nominal layout plus small per-IFU differences.

    Per IFU: the first edge between 16 and 32 px, widths 78 ± 0.6 px, positions ± 0.3 px off the
    84.5 px pitch, and a tilt of 1-3 px over the CCD height. Every width stays well inside the tracing's
    72.2..82.2 px window and the last edge inside the CCD (< 4090 px) at every row.
    """
    if not 1 <= ifu <= 24:
        raise ValueError(f"IFU must be 1..24, not {ifu}")
    rng = np.random.default_rng([_GEOMETRY_SEED, ifu])
    first = 24.0 + rng.uniform(-8.0, 8.0)
    left = first + NOMINAL_PITCH * np.arange(N_SLICES) + rng.uniform(-0.3, 0.3, N_SLICES)
    width = NOMINAL_WIDTH + rng.uniform(-0.6, 0.6, N_SLICES)
    tilt = rng.uniform(1.0, 3.0) / TRIMMED_SHAPE[0]
    left.setflags(write=False)
    width.setflags(write=False)
    return SliceGeometry(ifu=ifu, left=left, width=width, tilt=float(tilt))


def pixel_response(ifu: int) -> np.ndarray:
    """The fixed pixel-to-pixel sensitivity of IFU ``ifu``'s CCD (float32, mean 1, rms 1 %).

    Every exposure of that CCD carries the same pattern, so a master flat must reproduce it.
    """
    rng = np.random.default_rng([_GEOMETRY_SEED, ifu, 1])
    response = rng.standard_normal(TRIMMED_SHAPE, dtype=np.float32)
    response *= PIXEL_RESPONSE_RMS
    response += 1.0
    return response


@lru_cache(maxsize=8)
def ccd_response(ifu: int) -> np.ndarray:
    """What IFU ``ifu``'s CCD makes of uniform light: slice illumination times pixel response (read-only).

    Every flat, arc, twilight and sky frame of that CCD is multiplied by it; cached because computing it
    took 1.5 s per frame of a night's data writing.
    """
    response = slice_geometry(ifu).illumination()
    response *= pixel_response(ifu)
    response.setflags(write=False)
    return response
