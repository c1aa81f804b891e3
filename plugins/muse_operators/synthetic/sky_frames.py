"""On-sky exposures (OBJECT, SKY, STD) of the synthetic instrument: the inverse of muse_scibasic + muse_scipost.

The pipeline maps a CCD pixel (column i, row j) of CCD slice k to the field as
``x = x_k + (centre_k(j) - i) / width_k · 75`` and ``y = y_k`` (``muse_pixtable_create`` with the
GEOMETRY_TABLE's x_k, y_k), then to the sky with a TAN projection whose reference pixel is the centre
of the pixel table's x/y extent, its reference value the header's RA/DEC, and its CD matrix the
spaxel scale rotated by the derotator (``muse_wcs_project_tan`` / ``muse_wcs_apply_cd``: position
angle = -INS.DROT.POSANG in SKY mode). :func:`field_wcs` builds exactly that with astropy, so every
source lands where the pipeline will put it, for any pointing, dither and rotation.

Each pixel then records (electrons):

    illumination · pixel response · Σ [surface brightness or PSF density] · pixel solid angle
        · f_λ dλ · response(λ) · atmosphere(λ, airmass) · EXPTIME

with the illumination and pixel response of the lamp flats (so a flat field removes them), λ(j) of
the arcs, lines spread over rows like the arc lines (the same LSF), and a pixel solid angle of
75/78 spaxel × 1 spaxel. Noise, bias pattern and readout are :func:`~.detector.read_out`'s.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.time import Time
from astropy.wcs import WCS

from .detector import TRIMMED_SHAPE, ReadoutModel, read_out
from .headers import PARANAL, FrameSpec, lst_deg
from .lamps import dispersion, line_fractions, wavelength
from .raw_frames import bias_structure, write_raw
from .scene import NEBULAR_LINES, SPAXEL_ARCSEC, Moffat, Scene, atmosphere, response, sky_continuum, sky_lines
from .slices import N_SLICES, NOMINAL_WIDTH, ccd_response, slice_geometry
from .static_tables import GEOMETRY_WIDTH, sky_position

PIXEL_AREA_ARCSEC2 = GEOMETRY_WIDTH / NOMINAL_WIDTH * SPAXEL_ARCSEC**2  # what one CCD pixel sees
_ROWS = np.arange(1, TRIMMED_SHAPE[0] + 1, dtype=np.float64)
_PSF_REACH_ARCSEC = 6.0  # beyond this a Moffat (β 2.8) holds < 0.1 % of the flux: not rendered


@dataclass(frozen=True)
class Pointing:
    """Where the telescope points (RA/DEC of the header) and the derotator angle (INS.DROT.POSANG)."""

    ra: float
    dec: float
    posang: float = 0.0


def field_centre(ifus: Sequence[int]) -> tuple[float, float]:
    """Centre of the field extent covered by ``ifus``: the pipeline's reference pixel (GEOMETRY units)."""
    xs, ys = zip(*(sky_position(ifu, k) for ifu in ifus for k in range(1, N_SLICES + 1)), strict=True)
    half = GEOMETRY_WIDTH / 2.0
    return (min(xs) - half + max(xs) + half) / 2.0, (min(ys) + max(ys)) / 2.0


def field_wcs(pointing: Pointing, ifus: Sequence[int]) -> WCS:
    """Field (GEOMETRY_TABLE x/y, FITS-like 1-based convention) → sky, as muse_scipost will compute it."""
    pa = math.radians(-pointing.posang)  # muse_astro_posangle: DROT.MODE SKY negates POSANG
    scale = SPAXEL_ARCSEC / 3600.0
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [pointing.ra, pointing.dec]
    wcs.wcs.crpix = list(field_centre(ifus))
    wcs.wcs.cd = [[-scale * math.cos(pa), -scale * math.sin(pa)], [-scale * math.sin(pa), scale * math.cos(pa)]]
    return wcs


def _add_line(spectrum: np.ndarray, lam: float, flux: float) -> None:
    start, fractions = line_fractions(lam, len(spectrum))
    spectrum[start:start + len(fractions)] += flux * fractions


@dataclass(frozen=True)
class Observation:
    """One on-sky exposure: what is seen (scene, or only sky), from where, for how long, through what air."""

    pointing: Pointing
    exptime: float
    airmass: float
    scene: Scene | None  # None: an empty sky field
    psf: Moffat = Moffat()
    sky_scale: float = 1.0


def render_ifu(observation: Observation, ifu: int, ifus: Sequence[int]) -> np.ndarray:
    """Electrons on IFU ``ifu``'s trimmed CCD (before illumination, response and noise)."""
    lam, step = wavelength(_ROWS), dispersion(_ROWS)
    conversion = response(lam) * atmosphere(lam, observation.airmass) * observation.exptime  # e- per erg/cm²
    sky = sky_continuum(lam) * step
    for _name, line_lam, flux in sky_lines():
        _add_line(sky, line_lam, flux)
    sky *= observation.sky_scale * PIXEL_AREA_ARCSEC2 * conversion

    scene = observation.scene
    wcs = field_wcs(observation.pointing, ifus)
    stars = []
    if scene is not None:
        for star in scene.stars:
            x, y = wcs.all_world2pix([[star.ra, star.dec]], 1)[0]
            stars.append((x, y, star.spectrum(lam) * step * conversion * PIXEL_AREA_ARCSEC2))
    nebula_lines = []
    if scene is not None and scene.nebula is not None:
        nx, ny = wcs.all_world2pix([[scene.nebula.ra, scene.nebula.dec]], 1)[0]
        for line, line_lam in NEBULAR_LINES.items():
            profile = np.zeros_like(lam)
            _add_line(profile, line_lam, 1.0)
            nebula_lines.append((line, profile * conversion * PIXEL_AREA_ARCSEC2))

    geometry = slice_geometry(ifu)
    image = np.zeros(TRIMMED_SHAPE, dtype=np.float32)
    centres_ref = geometry.left + 0.5 * geometry.width
    shift = geometry.shift(_ROWS)[:, None]
    for k in range(N_SLICES):
        x0, y0 = sky_position(ifu, k + 1)
        low = centres_ref[k] - (centres_ref[k] - centres_ref[k - 1]) / 2 if k else centres_ref[k] - 42.0
        high = centres_ref[k] + (centres_ref[k + 1] - centres_ref[k]) / 2 if k < N_SLICES - 1 else centres_ref[k] + 42.0
        first = max(0, math.floor(low + float(shift.min())) - 1)
        last = min(TRIMMED_SHAPE[1], math.ceil(high + float(shift.max())) + 1)
        columns = np.arange(first + 1, last + 1, dtype=np.float64)[None, :]  # 1-based
        local = columns - shift  # column position at the reference row
        owned = (local >= low) & (local < high)
        xf = x0 + (centres_ref[k] + shift - columns) / geometry.width[k] * GEOMETRY_WIDTH
        block = np.broadcast_to(sky[:, None], xf.shape).copy()
        for sx, sy, star_rows in stars:
            dy = (y0 - sy) * SPAXEL_ARCSEC
            if abs(dy) > _PSF_REACH_ARCSEC or abs(x0 - sx) * SPAXEL_ARCSEC > _PSF_REACH_ARCSEC + 8.0:
                continue
            r = np.hypot((xf - sx) * SPAXEL_ARCSEC, dy)
            block += observation.psf.density(r) * star_rows[:, None]
        for line, line_rows_ in nebula_lines:
            r = np.hypot((xf - nx) * SPAXEL_ARCSEC, (y0 - ny) * SPAXEL_ARCSEC)
            brightness = scene.nebula.surface_brightness(line, r)  # type: ignore[union-attr]
            rows = np.nonzero(line_rows_)[0]
            block[rows] += brightness[rows] * line_rows_[rows, None]
        target = image[:, first:last]
        target[owned] = block[owned]
    image *= ccd_response(ifu)
    return image


def hour_angle_geometry(ra: float, dec: float, lst: float) -> tuple[float, float, float]:
    """(altitude, airmass, parallactic angle) in deg at Paranal for hour angle LST - RA."""
    phi, d, h = math.radians(PARANAL["lat"]), math.radians(dec), math.radians(lst - ra)
    sin_alt = math.sin(phi) * math.sin(d) + math.cos(phi) * math.cos(d) * math.cos(h)
    alt = math.degrees(math.asin(sin_alt))
    parang = math.degrees(math.atan2(math.sin(h), math.tan(phi) * math.cos(d) - math.sin(d) * math.cos(h)))
    return alt, 1.0 / max(sin_alt, 0.05), parang


def sky_keywords(ra: float, dec: float, mjd_start: float, exptime: float, posang: float, fwhm: float,
                 ins_mode: str) -> dict:
    """TEL/INS keywords of an on-sky exposure, consistent with its RA/DEC, time and site."""
    alt0, airm0, par0 = hour_angle_geometry(ra, dec, lst_deg(mjd_start))
    alt1, airm1, par1 = hour_angle_geometry(ra, dec, lst_deg(mjd_start + exptime / 86400.0))
    keywords = {
        "ESO TEL ALT": round(alt0, 4), "ESO TEL AZ": 0.0,
        "ESO TEL AIRM START": round(airm0, 4), "ESO TEL AIRM END": round(airm1, 4),
        "ESO TEL PARANG START": round(par0, 4), "ESO TEL PARANG END": round(par1, 4),
        "ESO TEL AMBI FWHM START": fwhm, "ESO TEL AMBI FWHM END": fwhm,
        "ESO TEL AMBI TEMP": 12.0, "ESO TEL AMBI RHUM": 15.0,
        "ESO TEL AMBI PRES START": 743.0, "ESO TEL AMBI PRES END": 743.0,
        "ESO INS DROT MODE": "SKY", "ESO INS DROT POSANG": float(posang),
        "ESO OBS START": Time(mjd_start, format="mjd").isot[:19],
    }
    if ins_mode.startswith(("WFM-AO", "NFM-AO")):
        keywords["ESO AOS LGS1 ST"] = True
    return keywords


def write_sky_frame(path_dir: Path, spec: FrameSpec, observation: Observation, ifus: Sequence[int], seed: int,
                    bias_seed: int | None, model: ReadoutModel = ReadoutModel()) -> Path:
    """Render, read out and write one on-sky exposure with data for ``ifus`` (other IFUs dead)."""
    ifus = sorted(set(ifus))
    chips: Mapping[int, np.ndarray] = {
        ifu: read_out(render_ifu(observation, ifu, ifus), np.random.default_rng([seed, ifu]), model,
                      bias_structure(bias_seed, ifu) if bias_seed is not None else None)
        for ifu in ifus}
    return write_raw(path_dir / f"{spec.archive_name}.fits", spec, chips, model)
