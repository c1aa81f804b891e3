"""The truth of a synthetic on-sky exposure: what is on the sky and how much of it reaches the CCD.

Everything a reduced cube is compared against is defined here and nowhere else, so a test can ask
"how bright should star S be at 6000 Å" of the same function that made the raw frame:

* point sources with a Moffat PSF (muse_standard's default profile, so its flux integration is right
  for the standard star too; REPORT.md §7 measured a 24 % loss with a Gaussian PSF),
* an emission-line nebula (Hα, [NII] 6548/6583, [OI] 6300/6364): a bright core on a field-filling floor,
  the case Zeidler et al.'s modified sky subtraction exists for, because its [OI] 6300 falls on the
  sky's own [OI] 6300 and a sky estimated inside the nebula contains nebular light,
* the night sky: a smooth continuum plus the lines of the SKY_LINES table,
* the instrument: collecting area, throughput, extinction (the EXTINCT_TABLE's curve).

Positions are absolute (RA/Dec, deg), so one scene serves every dither and rotation; fluxes are in
erg/s/cm²/Å (continua), erg/s/cm² (lines) and per arcsec² for surface brightnesses.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from .static_tables import SKY_LINE_LIST, StandardStar, extinction, standard_star_flux

SPAXEL_ARCSEC = 0.2  # WFM spaxel (kMuseSpaxelSizeX_WFM)
TELESCOPE_AREA_CM2 = 4.85e5  # VLT UT4 effective collecting area
HC_ERG_ANGSTROM = 1.98645e-8
SKY_CONTINUUM_5500 = 1.0e-17  # erg/s/cm²/Å/arcsec² at 5500 Å
DEFAULT_FWHM_ARCSEC = 0.8
DEFAULT_BETA = 2.8  # Moffat β typical of VLT seeing
NEBULAR_LINES = {"[OI]6300": 6300.304, "[OI]6364": 6363.776, "[NII]6548": 6548.05, "Halpha": 6562.80,
                 "[NII]6583": 6583.45}


def throughput(wavelength: np.ndarray) -> np.ndarray:
    """Telescope + instrument + detector efficiency: a broad bump peaking at 35 % near 7000 Å."""
    lam = np.asarray(wavelength, dtype=np.float64)
    return 0.05 + 0.30 * np.exp(-0.5 * ((lam - 7000.0) / 2200.0) ** 2)


def response(wavelength: np.ndarray) -> np.ndarray:
    """Detected electrons per s per Å for a source of 1 erg/s/cm²/Å above the atmosphere."""
    lam = np.asarray(wavelength, dtype=np.float64)
    return TELESCOPE_AREA_CM2 * throughput(lam) * lam / HC_ERG_ANGSTROM


def atmosphere(wavelength: np.ndarray, airmass: float) -> np.ndarray:
    """Fraction transmitted through ``airmass`` atmospheres (the EXTINCT_TABLE's curve)."""
    return 10.0 ** (-0.4 * extinction(wavelength) * airmass)


def sky_continuum(wavelength: np.ndarray) -> np.ndarray:
    """Night-sky continuum surface brightness [erg/s/cm²/Å/arcsec²]."""
    return SKY_CONTINUUM_5500 * (np.asarray(wavelength, dtype=np.float64) / 5500.0) ** 0.5


def sky_lines() -> list[tuple[str, float, float]]:
    """(name, λ [Å], surface brightness [erg/s/cm²/arcsec²]) of the sky's emission lines."""
    return [(name, lam, flux * 1.0e-20) for name, _group, lam, flux in SKY_LINE_LIST]


@dataclass(frozen=True)
class PointSource:
    """A star: a power-law continuum f_λ = flux_6000 · (λ/6000)^slope, seen through a Moffat PSF."""

    name: str
    ra: float  # deg
    dec: float  # deg
    flux_6000: float  # erg/s/cm²/Å at 6000 Å
    slope: float = 0.0
    reference: StandardStar | None = None  # a standard star: its spectrum is the STD_FLUX_TABLE's

    def spectrum(self, wavelength: np.ndarray) -> np.ndarray:
        if self.reference is not None:
            return standard_star_flux(wavelength, self.reference)
        return self.flux_6000 * (np.asarray(wavelength, dtype=np.float64) / 6000.0) ** self.slope


@dataclass(frozen=True)
class Nebula:
    """Emission lines only: surface brightness = floor + peak · Gaussian(σ), per line, per arcsec².

    ``line_peaks`` / ``line_floors`` map a NEBULAR_LINES name to erg/s/cm²/arcsec².
    """

    name: str
    ra: float
    dec: float
    sigma_arcsec: float
    line_peaks: dict[str, float]
    line_floors: dict[str, float]

    def surface_brightness(self, line: str, offset_arcsec: np.ndarray | float) -> np.ndarray:
        r = np.asarray(offset_arcsec, dtype=np.float64)
        core = np.exp(-0.5 * (r / self.sigma_arcsec) ** 2)
        return self.line_floors.get(line, 0.0) + self.line_peaks.get(line, 0.0) * core


@dataclass(frozen=True)
class Moffat:
    """The seeing disc: I(r) ∝ (1 + (r/α)²)^-β with FWHM = 2α·sqrt(2^(1/β) - 1)."""

    fwhm_arcsec: float = DEFAULT_FWHM_ARCSEC
    beta: float = DEFAULT_BETA

    @property
    def alpha_arcsec(self) -> float:
        return self.fwhm_arcsec / (2.0 * math.sqrt(2.0 ** (1.0 / self.beta) - 1.0))

    def density(self, r_arcsec: np.ndarray) -> np.ndarray:
        """Fraction of the flux per arcsec² at radius ``r`` (integrates to 1 over the plane)."""
        a = self.alpha_arcsec
        return (self.beta - 1.0) / (math.pi * a * a) * (1.0 + (np.asarray(r_arcsec) / a) ** 2) ** -self.beta

    def enclosed(self, r_arcsec: float) -> float:
        """Fraction of the flux within radius ``r`` (what an aperture of that radius collects)."""
        return 1.0 - (1.0 + (r_arcsec / self.alpha_arcsec) ** 2) ** (1.0 - self.beta)


@dataclass
class Scene:
    """Everything on the sky around one target; SKY exposures see only the night sky."""

    name: str
    ra: float
    dec: float
    stars: list[PointSource] = field(default_factory=list)
    nebula: Nebula | None = None

    def to_manifest(self) -> dict:
        return {"name": self.name, "ra": self.ra, "dec": self.dec,
                "stars": [{k: v for k, v in asdict(s).items() if k != "reference"}
                          | ({"standard": s.reference.name} if s.reference else {}) for s in self.stars],
                "nebula": asdict(self.nebula) if self.nebula else None}


def offset_position(ra: float, dec: float, east_arcsec: float, north_arcsec: float) -> tuple[float, float]:
    """The position ``east``/``north`` arcsec from (ra, dec), on the tangent plane (exact TAN inverse)."""
    xi, eta = math.radians(east_arcsec / 3600.0), math.radians(north_arcsec / 3600.0)
    d0, a0 = math.radians(dec), math.radians(ra)
    denominator = math.cos(d0) - eta * math.sin(d0)
    a = a0 + math.atan2(xi, denominator)
    d = math.atan2(math.sin(d0) + eta * math.cos(d0), math.hypot(xi, denominator))
    return math.degrees(a) % 360.0, math.degrees(d)


# Star layout of a science field [arcsec east, north of the centre]: six inside the central 7" square
# (the overlap of a 3-IFU strip rotated by 90°: muse_exp_align needs >= 5 common sources) and more along
# the strip's length; fluxes spread over a factor of 8 so bright and faint are both tested.
_STAR_OFFSETS = ((0.0, 0.0), (2.4, 1.4), (-2.2, -1.2), (1.6, -2.2), (-1.8, 2.0), (-0.2, 2.8),
                 (-18.0, 0.6), (-9.5, -0.8), (9.0, 0.9), (19.0, -0.4), (26.0, 0.3), (-25.5, -0.2))
_STAR_FLUX = (4.0e-16, 2.0e-16, 1.5e-16, 1.0e-16, 1.2e-16, 0.8e-16,
              3.0e-16, 1.0e-16, 2.5e-16, 0.6e-16, 1.5e-16, 2.0e-16)


def science_scene(name: str, ra: float, dec: float, with_nebula: bool = True) -> Scene:
    """A science field: 12 stars and (by default) a nebula 3" east of the centre filling the field."""
    stars = [PointSource(f"{name}-S{i + 1:02d}", *offset_position(ra, dec, east, north), flux_6000=flux,
                         slope=(-1.0, 0.0, 0.5)[i % 3])
             for i, ((east, north), flux) in enumerate(zip(_STAR_OFFSETS, _STAR_FLUX, strict=True))]
    nebula = None
    if with_nebula:
        peaks = {"Halpha": 3.0e-15, "[NII]6583": 1.0e-15, "[NII]6548": 0.33e-15, "[OI]6300": 3.0e-16,
                 "[OI]6364": 1.0e-16}
        nebula = Nebula(f"{name}-NEB", *offset_position(ra, dec, 3.0, 0.0), sigma_arcsec=6.0, line_peaks=peaks,
                        line_floors={line: 0.5 * value for line, value in peaks.items()})
    return Scene(name, ra, dec, stars, nebula)


def standard_scene(star: StandardStar) -> Scene:
    """The standard star alone, at its catalogue position."""
    return Scene(star.name, star.ra, star.dec, [PointSource(star.name, star.ra, star.dec, 0.0, reference=star)])
