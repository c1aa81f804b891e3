"""Synthetic nights in ESO's archive layout, as the demo and the tests reduce them, with a truth manifest.

A night is a calibration day (biases, lamp flats, arcs of three lamps, optional darks, twilight sky
flats) followed by the night's OBs (:mod:`.schedule`) and a standard star; every frame is written for
the IFUs asked for (IFU 1 always: muse_twilight takes IFU 1 as its reference), the others present as
dead extensions. The static calibrations go to ``static/`` beside the raw frames (found by PRO.CATG).
Every frame of one CCD carries the same fixed bias pattern, so the master bias removes it everywhere.

``manifest.json`` (in the raw directory; the planner reads only FITS files) records the truth
tests compare reductions against: the scenes (star positions and fluxes, nebula lines), every
exposure's pointing, rotation, dither, exposure time and airmass, and which calibration frames belong
to which night.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .calibration_frames import (write_arc_set, write_dark_set, write_flat_set, write_skyflat_set,
                                 write_static_calibrations)
from .raw_frames import write_bias_set
from .schedule import NIGHT0_MJD, night_schedule
from .sky_frames import write_sky_frame

CALIBRATION_DAY_OFFSET = -0.5  # the calibration day starts at noon before the night (NIGHT0 - 0.5 d)


@dataclass
class NightFiles:
    raw_dir: Path
    frames: dict[str, list[Path]] = field(default_factory=dict)  # pipeline tag -> raw frames
    statics: dict[str, Path] = field(default_factory=dict)  # PRO.CATG -> static calibration
    manifest: Path | None = None


def _calibration_day(raw_dir: Path, ifus: Sequence[int], night: int, seed: int, darks: bool,
                     ins_mode: str, illum: bool) -> dict[str, list[Path]]:
    day = NIGHT0_MJD + night + CALIBRATION_DAY_OFFSET  # 12:00 UTC before the night
    frames = {"BIAS": write_bias_set(raw_dir, ifus, count=3, seed=seed, mjd_start=day),
              "FLAT": write_flat_set(raw_dir, ifus, seed=seed + 1, bias_seed=seed, mjd_start=day + 0.02,
                                     ins_mode=ins_mode),
              "ARC": write_arc_set(raw_dir, ifus, seed=seed + 2, bias_seed=seed, mjd_start=day + 0.04,
                                   ins_mode=ins_mode),
              "SKYFLAT": write_skyflat_set(raw_dir, ifus, seed=seed + 3, bias_seed=seed, mjd_start=day + 0.49,
                                           ins_mode=ins_mode)}
    if darks:
        frames["DARK"] = write_dark_set(raw_dir, ifus, seed=seed + 4, bias_seed=seed, mjd_start=day + 0.08)
    if illum:  # the attached lamp flat ESO takes with each OB; one, just before the night's first OB
        frames["ILLUM"] = write_flat_set(raw_dir, ifus, count=1, seed=seed + 5, bias_seed=seed,
                                         mjd_start=day + 0.5 + 0.2 / 24.0, ins_mode=ins_mode,
                                         dpr_type="FLAT,LAMP,ILLUM")
    return frames


def write_night(raw_dir: Path, ifus: Sequence[int] = (1, 2, 3), obs: int = 1, exposures: int = 2, nights: int = 1,
                seed: int = 1, ins_mode: str = "WFM-NOAO-N", darks: bool = False, sky: bool = True,
                standard: bool = True, science: bool = True, illum: bool = False,
                extra_statics: bool = False) -> NightFiles:
    """Write ``nights`` nights into ``raw_dir`` (world-readable: the recipes run as an unprivileged user)."""
    ifus = sorted(set(ifus) | {1})
    if any(not 1 <= ifu <= 24 for ifu in ifus):
        raise ValueError(f"IFUs must be 1..24, not {ifus}")
    raw_dir.mkdir(parents=True, exist_ok=True)
    files = NightFiles(raw_dir)
    manifest: dict = {"generator": "muse_operators.synthetic", "seed": seed, "ifus": ifus, "ins_mode": ins_mode,
                      "nights": [], "scenes": {}, "exposures": []}
    for night in range(nights):
        night_seed = seed + 100 * night
        calibrations = _calibration_day(raw_dir, ifus, night, night_seed, darks, ins_mode, illum)
        for tag, paths in calibrations.items():
            files.frames.setdefault(tag, []).extend(paths)
        manifest["nights"].append({"night": night, "calibrations": {t: [p.name for p in ps]
                                                                    for t, ps in calibrations.items()}})
        if not science:
            continue
        planned, scenes = night_schedule(night, obs, exposures, ins_mode, standard=standard, sky=sky)
        manifest["scenes"].update({name: scene.to_manifest() for name, scene in scenes.items()})
        for index, exposure in enumerate(planned):
            path = write_sky_frame(raw_dir, exposure.spec, exposure.observation, ifus, seed=night_seed * 1000 + index,
                                   bias_seed=night_seed)
            files.frames.setdefault(exposure.kind, []).append(path)
            pointing = exposure.observation.pointing  # the true one; the header has the nominal one
            manifest["exposures"].append({
                "file": path.name, "kind": exposure.kind, "night": night, "ob": exposure.ob,
                "obs_id": exposure.spec.obs_id, "target": exposure.target, "mjd_obs": exposure.spec.mjd_obs,
                "ra": exposure.spec.ra, "dec": exposure.spec.dec, "true_ra": pointing.ra, "true_dec": pointing.dec,
                "posang": pointing.posang, "dither_arcsec": list(exposure.dither_arcsec),
                "pointing_error_arcsec": list(exposure.pointing_error_arcsec), "exptime": exposure.observation.exptime,
                "airmass": exposure.observation.airmass, "psf_fwhm_arcsec": exposure.observation.psf.fwhm_arcsec,
                "psf_beta": exposure.observation.psf.beta})
    files.statics = write_static_calibrations(raw_dir / "static", ifus, extra=extra_statics)
    files.manifest = raw_dir / "manifest.json"
    files.manifest.write_text(json.dumps(manifest, indent=1))
    for directory in (raw_dir, raw_dir / "static"):
        directory.chmod(0o755)
    return files


def write_calibration_night(raw_dir: Path, ifus: Sequence[int] = (1,), seed: int = 1) -> NightFiles:
    """Only the calibration day (the demo's and the calibration-chain tests' input)."""
    return write_night(raw_dir, ifus, seed=seed, science=False)
