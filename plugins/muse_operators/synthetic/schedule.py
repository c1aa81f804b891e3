"""When and where a synthetic night observes: OBs, dithers, rotations, sky offsets and the standard star.

Pure bookkeeping (no pixels), so the header logic is unit-tested in milliseconds. The layout follows
how MUSE is used and what MUSEreduce and the DAG must cope with:

* each OB is one template (``TPL START`` shared, ``TPL NEXP``/``EXPNO`` counting) of ``exposures`` OBJECT
  exposures plus one external SKY exposure 5' away, taken after the first OBJECT exposure;
* exposures are dithered by sub-arcsecond offsets and rotated through 0/180/90 degrees
  (``INS.DROT.POSANG``); with three or more exposures the last is shorter (300 s vs 600 s), so one OB has
  two exposure times (``using_specific_exposure_time``);
* OBs come in pairs on one target: the second OB of a pair continues the first one's dithers, so one
  pointing is split across two OBs (``dither_multiple_OBs`` / ``OB_list``);
* every target is observed near transit (its RA is the local sidereal time in the middle of its OBs),
  so airmass stays ~1 and differential refraction, which the generator does not model, is negligible;
* one standard star per night at its transit;
* the telescope does not point exactly where the header says: OBJECT exposures carry a known pointing
  error (:data:`POINTING_ERRORS_ARCSEC`, zero for a target's first exposure) that muse_exp_align has to
  find; the header holds the nominal pointing, the rendered light the true one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from astropy.time import Time

from .headers import FrameSpec, lst_deg
from .scene import Moffat, Scene, offset_position, science_scene, standard_scene
from .sky_frames import Observation, Pointing, sky_keywords
from .static_tables import STANDARD_STARS

NIGHT0_MJD = 60301.0  # 2023-12-22 00:00 UTC, 21:00 at Paranal: dark, after the first calibration day
TARGET_DEC = -25.0  # 0.4 deg from the zenith at transit
ROTATIONS = (0.0, 180.0, 90.0)
DITHERS_ARCSEC = ((0.0, 0.0), (0.6, 0.4), (-0.5, 0.6), (0.4, -0.5), (-0.6, -0.3), (0.2, 0.7))
POINTING_ERRORS_ARCSEC = ((0.0, 0.0), (0.35, -0.25), (-0.3, 0.2), (0.25, 0.3), (-0.2, -0.35), (0.3, 0.1))
EXPTIME, SHORT_EXPTIME, SKY_EXPTIME, STD_EXPTIME = 600.0, 300.0, 120.0, 30.0
OVERHEAD_S = 60.0
SKY_OFFSET_ARCSEC = 300.0  # north: an empty field
OB_START_HOURS = 0.5  # after NIGHT0 + n
SCIENCE_PSF, STD_PSF = Moffat(0.8), Moffat(0.6)
OBS_PROG_ID = "60.A-9100(A)"


def programme_of(night: int) -> str:
    """Each night's science belongs to its own ESO programme (60.A-9100(A), 60.A-9101(A), ...), so the
    nightly DAG's programme filter has something to select."""
    return f"60.A-91{night % 100:02d}(A)"


@dataclass
class PlannedExposure:
    """One on-sky frame to write: its header, what it sees, and the truth the manifest records."""

    kind: str  # OBJECT | SKY | STD
    spec: FrameSpec
    observation: Observation
    night: int
    ob: str  # OBS NAME
    target: str
    dither_arcsec: tuple[float, float] = (0.0, 0.0)
    pointing_error_arcsec: tuple[float, float] = (0.0, 0.0)  # true pointing - header pointing (east, north)
    extra: dict = field(default_factory=dict)


def transit_mjd(ra: float, after_mjd: float) -> float:
    """The first time after ``after_mjd`` at which ``ra`` crosses the meridian at Paranal."""
    return after_mjd + ((ra - lst_deg(after_mjd)) % 360.0) / 360.98564736629


def _spec(kind: str, mjd: float, exptime: float, pointing: Pointing, ob: str, obs_id: int, target: str,
          tpl_start: str, nexp: int, expno: int, ins_mode: str, psf: Moffat, prog_id: str = OBS_PROG_ID) -> FrameSpec:
    catg = "CALIB" if kind == "STD" else "SCIENCE"
    tpl = "MUSE_wfm_cal_specphot" if kind == "STD" else "MUSE_wfm-noao_obs_genericoffset"
    extra = {"ESO TPL ID": tpl, "ESO OBS PROG ID": prog_id,
             **sky_keywords(pointing.ra, pointing.dec, mjd, exptime, pointing.posang, psf.fwhm_arcsec, ins_mode)}
    return FrameSpec(catg, kind, mjd, exptime=exptime, ins_mode=ins_mode, tpl_start=tpl_start, tpl_nexp=nexp,
                     tpl_expno=expno, obs_name=ob, obs_id=obs_id, target=target, ra=round(pointing.ra, 7),
                     dec=round(pointing.dec, 7), extra=extra)


def _ob_duration_days(exposures: int) -> float:
    exptimes = [exptime_of(i, exposures) for i in range(exposures)] + [SKY_EXPTIME]
    return sum(t + OVERHEAD_S for t in exptimes) / 86400.0


def exptime_of(index: int, exposures: int) -> float:
    """600 s, except the last of three or more exposures: 300 s (two exposure times in one OB)."""
    return SHORT_EXPTIME if exposures >= 3 and index == exposures - 1 else EXPTIME


def night_schedule(night: int, obs: int = 1, exposures: int = 2, ins_mode: str = "WFM-NOAO-N",
                   standard: bool = True, sky: bool = True) -> tuple[list[PlannedExposure], dict[str, Scene]]:
    """The on-sky frames of night ``night`` (0-based) and the scenes they look at, by target name."""
    if obs < 1 or exposures < 1:
        raise ValueError(f"a night needs at least one OB of one exposure (obs={obs}, exposures={exposures})")
    start = NIGHT0_MJD + night + OB_START_HOURS / 24.0
    per_ob = _ob_duration_days(exposures)
    planned: list[PlannedExposure] = []
    scenes: dict[str, Scene] = {}
    dither_count: dict[str, int] = {}
    for ob_index in range(obs):
        pair = ob_index // 2
        target = f"SYN-N{night + 1}{chr(ord('A') + pair)}"
        if target not in scenes:
            pair_obs = min(2, obs - 2 * pair)
            middle = start + (2 * pair + pair_obs / 2.0) * per_ob
            scenes[target] = science_scene(target, round(lst_deg(middle), 5), TARGET_DEC)
        scene = scenes[target]
        ob_name = f"{target}_OB{ob_index % 2 + 1}"
        obs_id = 1000000 + 100 * (night + 1) + ob_index + 1
        mjd = start + ob_index * per_ob
        tpl_start = Time(mjd, format="mjd").isot[:19]
        nexp = exposures + (1 if sky else 0)
        expno = 0
        for index in range(exposures):
            count = dither_count.get(target, 0)
            dither_count[target] = count + 1
            east, north = DITHERS_ARCSEC[count % len(DITHERS_ARCSEC)]
            ra, dec = offset_position(scene.ra, scene.dec, east, north)
            posang = ROTATIONS[count % len(ROTATIONS)]
            nominal = Pointing(ra, dec, posang)
            error = POINTING_ERRORS_ARCSEC[count % len(POINTING_ERRORS_ARCSEC)]
            true = Pointing(*offset_position(ra, dec, *error), posang)
            exptime = exptime_of(index, exposures)
            expno += 1
            spec = _spec("OBJECT", mjd, exptime, nominal, ob_name, obs_id, target, tpl_start, nexp, expno, ins_mode,
                         SCIENCE_PSF, programme_of(night))
            airmass = 0.5 * (spec.extra["ESO TEL AIRM START"] + spec.extra["ESO TEL AIRM END"])
            planned.append(PlannedExposure("OBJECT", spec, Observation(true, exptime, airmass, scene, SCIENCE_PSF),
                                           night, ob_name, target, (east, north), error))
            mjd += (exptime + OVERHEAD_S) / 86400.0
            if sky and index == 0:
                ra_sky, dec_sky = offset_position(scene.ra, scene.dec, 0.0, SKY_OFFSET_ARCSEC)
                pointing_sky = Pointing(ra_sky, dec_sky, posang)
                expno += 1
                spec = _spec("SKY", mjd, SKY_EXPTIME, pointing_sky, ob_name, obs_id, target, tpl_start, nexp, expno,
                             ins_mode, SCIENCE_PSF, programme_of(night))
                airmass = spec.extra["ESO TEL AIRM START"]
                planned.append(PlannedExposure("SKY", spec, Observation(pointing_sky, SKY_EXPTIME, airmass, None),
                                               night, ob_name, target))
                mjd += (SKY_EXPTIME + OVERHEAD_S) / 86400.0
    if standard:
        star = STANDARD_STARS[0]
        mjd = transit_mjd(star.ra, NIGHT0_MJD + night)
        pointing = Pointing(star.ra, star.dec, 0.0)
        ob_name = f"STD_{star.name}"
        spec = _spec("STD", mjd, STD_EXPTIME, pointing, ob_name, 2000000 + night + 1, star.name,
                     Time(mjd, format="mjd").isot[:19], 1, 1, ins_mode, STD_PSF)
        airmass = spec.extra["ESO TEL AIRM START"]
        scenes[star.name] = standard_scene(star)
        planned.append(PlannedExposure("STD", spec, Observation(pointing, STD_EXPTIME, airmass, scenes[star.name],
                                                                STD_PSF), night, ob_name, star.name))
    return planned, scenes
