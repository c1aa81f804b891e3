"""Measure reduced MUSE cubes against a synthetic night's truth: star positions and fluxes, line fluxes.

The checks a user of the synthetic data (and the tests) rely on: a DATACUBE_FINAL's WCS puts each
injected star where the manifest says, its flux after flux calibration matches the input spectrum, and
the nebula's lines keep their surface brightness. Cube conventions (``muse_resampling``): extension
``DATA`` in ``BUNIT`` = 10**(-20)*erg/s/cm**2/Angstrom per spaxel, axis 3 the wavelength in Å.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

CUBE_UNIT = 1.0e-20  # erg/s/cm²/Å per spaxel of BUNIT "10**(-20)*erg/s/cm**2/Angstrom"
CONTINUUM_WINDOWS = ((6050.0, 6250.0), (7400.0, 7800.0))  # no sky or nebular line inside


@dataclass
class Cube:
    data: np.ndarray  # (λ, y, x)
    celestial: WCS
    wavelength: np.ndarray  # Å per plane
    spaxel_arcsec: float

    @classmethod
    def load(cls, path: Path) -> Cube:
        with fits.open(path) as hdul:
            hdu = hdul["DATA"]
            data = hdu.data.astype(np.float64)
            wcs = WCS(hdu.header)
        planes = np.arange(data.shape[0])
        wavelength = wcs.sub([3]).pixel_to_world_values(planes) * (1e10 if wcs.wcs.cunit[2] == "m" else 1.0)
        celestial = wcs.celestial
        scale = float(np.sqrt(abs(np.linalg.det(celestial.pixel_scale_matrix))) * 3600.0)
        return cls(data, celestial, np.asarray(wavelength, dtype=np.float64), scale)

    def band(self, lo: float, hi: float) -> np.ndarray:
        """Mean image over ``lo..hi`` Å (NaN-aware; spaxels outside the field stay NaN)."""
        planes = (self.wavelength >= lo) & (self.wavelength <= hi)
        return _nanmean_planes(self.data[planes])

    def white(self) -> np.ndarray:
        return _nanmean_planes(self.data)


def _nanmean_planes(planes: np.ndarray) -> np.ndarray:
    """Mean over the wavelength axis. The spaxels outside the (rotated, dithered) field are NaN in every
    plane: their NaN mean is the expected answer, not the "Mean of empty slice" warning numpy gives."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(planes, axis=0)


@dataclass
class StarMeasurement:
    ra: float
    dec: float
    offset_arcsec: float  # from the expected position
    flux: dict[tuple[float, float], float]  # continuum window -> aperture f_λ [erg/s/cm²/Å]
    complete: bool  # the aperture lies fully inside the field


def measure_star(cube: Cube, ra: float, dec: float, search_arcsec: float = 1.5,
                 aperture_arcsec: float = 1.5) -> StarMeasurement:
    """Centroid of the star expected at (ra, dec) in the white-light image, and its aperture fluxes."""
    white = cube.white()
    x0, y0 = cube.celestial.world_to_pixel(SkyCoord(ra, dec, unit="deg"))
    yy, xx = np.indices(white.shape)
    search = np.hypot(xx - x0, yy - y0) <= search_arcsec / cube.spaxel_arcsec
    if not np.any(search & np.isfinite(white)):
        raise ValueError(f"star at RA {ra:.6f} Dec {dec:.6f} is outside the cube")
    box = np.where(search & np.isfinite(white), white, np.nan)
    background = np.nanmedian(np.where(np.hypot(xx - x0, yy - y0) <= 3 * search_arcsec / cube.spaxel_arcsec,
                                       white, np.nan))
    peak = np.unravel_index(np.nanargmax(box), box.shape)
    xc, yc = float(peak[1]), float(peak[0])
    for _ in range(5):  # iterate a centroid in a 0.8" radius around the current centre
        inner = (np.hypot(xx - xc, yy - yc) <= 0.8 / cube.spaxel_arcsec) & np.isfinite(white)
        weights = np.where(inner, np.clip(white - background, 0.0, None), 0.0)
        xc, yc = float((weights * xx).sum() / weights.sum()), float((weights * yy).sum() / weights.sum())
    position = cube.celestial.pixel_to_world(xc, yc)
    offset = position.separation(SkyCoord(ra, dec, unit="deg")).arcsec
    aperture = np.hypot(xx - xc, yy - yc) <= aperture_arcsec / cube.spaxel_arcsec
    fluxes, complete = {}, True
    for window in CONTINUUM_WINDOWS:
        image = cube.band(*window)
        complete &= bool(np.all(np.isfinite(image[aperture])))
        annulus = (np.hypot(xx - xc, yy - yc) > 2.0 / cube.spaxel_arcsec) & \
                  (np.hypot(xx - xc, yy - yc) <= 3.0 / cube.spaxel_arcsec)
        sky = float(np.nanmedian(image[annulus])) if np.any(np.isfinite(image[annulus])) else 0.0
        fluxes[window] = float(np.nansum(image[aperture] - sky)) * CUBE_UNIT
    return StarMeasurement(float(position.ra.deg), float(position.dec.deg), float(offset), fluxes, complete)


def line_surface_brightness(cube: Cube, ra: float, dec: float, line_wavelength: float, half_box_arcsec: float = 0.5,
                            half_width_a: float = 6.0) -> float:
    """Continuum-subtracted line flux per arcsec² [erg/s/cm²/arcsec²] in a box around (ra, dec)."""
    x0, y0 = cube.celestial.world_to_pixel(SkyCoord(ra, dec, unit="deg"))
    half = max(1, int(round(half_box_arcsec / cube.spaxel_arcsec)))
    xs = slice(int(round(float(x0))) - half, int(round(float(x0))) + half + 1)
    ys = slice(int(round(float(y0))) - half, int(round(float(y0))) + half + 1)
    spectrum = np.nanmean(cube.data[:, ys, xs], axis=(1, 2))
    lam = cube.wavelength
    inside = np.abs(lam - line_wavelength) <= half_width_a
    sides = (np.abs(lam - line_wavelength) > half_width_a + 2) & (np.abs(lam - line_wavelength) <= half_width_a + 12)
    continuum = float(np.nanmedian(spectrum[sides]))
    step = float(np.median(np.diff(lam)))
    line = float(np.nansum(spectrum[inside] - continuum)) * step * CUBE_UNIT
    return line / cube.spaxel_arcsec**2


def offset_table(path: Path) -> dict[str, tuple[float, float]]:
    """OFFSET_LIST rows: DATE_OBS -> (RA_OFFSET·cos δ, DEC_OFFSET) in arcsec (the table has no cos δ)."""
    with fits.open(path) as hdul:
        table = hdul[1].data
        dec0 = float(hdul[0].header.get("DEC", 0.0))
    cos_dec = np.cos(np.radians(dec0))
    return {str(row["DATE_OBS"]).strip(): (float(row["RA_OFFSET"]) * 3600.0 * cos_dec,
                                           float(row["DEC_OFFSET"]) * 3600.0) for row in table}
