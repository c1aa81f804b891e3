"""Primary and extension headers of synthetic MUSE raw frames, with the keywords the recipes read.

Keyword set and semantics from the pipeline source (``muse_pfits.c`` getters, ``recipes/muse_raw_frames.xml``)
and ESO's OCA rules (``reflex/muse_wkf.oca``): DPR CATG/TYPE/TECH classify a frame, TPL START/NEXP/EXPNO group
it into a template, DET READ CURID/CURNAME and CHIP NAME/ID must agree across a set.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from astropy.io import fits
from astropy.time import Time

from .detector import OVERSCAN, PORT_POSITIONS, PRESCAN, QUAD_NX, QUAD_NY, ReadoutModel

PARANAL = {"lat": -24.6270, "lon": -70.4040, "elev": 2648.0}


def lst_deg(mjd: float) -> float:
    """Apparent local sidereal time at Paranal [deg] at UTC ``mjd``."""
    return float(Time(mjd, format="mjd", scale="utc").sidereal_time("apparent", longitude=PARANAL["lon"]).deg)


@dataclass(frozen=True)
class FrameSpec:
    """What distinguishes one raw frame's primary header."""

    dpr_catg: str  # CALIB | SCIENCE
    dpr_type: str  # BIAS, FLAT,LAMP, WAVE, FLAT,SKY, OBJECT, ...
    mjd_obs: float
    exptime: float = 0.0
    ins_mode: str = "WFM-NOAO-N"
    tpl_start: str = ""
    tpl_nexp: int = 1
    tpl_expno: int = 1
    obs_name: str = "Calibration"
    obs_id: int = 200000000
    target: str = ""
    ra: float = 0.0
    dec: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def date_obs(self) -> str:
        return Time(self.mjd_obs, format="mjd", scale="utc").isot

    @property
    def archive_name(self) -> str:
        """ESO's archive file name stem, ``MUSE.<DATE-OBS to ms>``."""
        return f"MUSE.{self.date_obs[:23]}"


def primary_header(spec: FrameSpec) -> fits.Header:
    t = Time(spec.mjd_obs, format="mjd", scale="utc")
    h = fits.Header()
    h["ORIGIN"] = "ESO-PARANAL"
    h["TELESCOP"] = "ESO-VLT-U4"
    h["INSTRUME"] = "MUSE"
    h["OBJECT"] = spec.target or spec.dpr_type
    h["DATE-OBS"] = (spec.date_obs, "Observing date")
    h["MJD-OBS"] = (spec.mjd_obs, "Obs start")
    h["EXPTIME"] = (float(spec.exptime), "Integration time")
    h["UTC"] = (round((spec.mjd_obs % 1.0) * 86400.0, 3), "[s] UTC at start")
    lst = t.sidereal_time("apparent", longitude=PARANAL["lon"]).hour * 3600.0
    h["LST"] = (round(lst, 3), "[s] Local sidereal time at start")
    h["RA"] = (spec.ra, "[deg] pointing")
    h["DEC"] = (spec.dec, "[deg] pointing")
    h["EQUINOX"] = 2000.0
    h["RADESYS"] = "FK5"
    h["ARCFILE"] = f"{spec.archive_name}.fits"
    h["ORIGFILE"] = f"MUSE_{spec.dpr_type.replace(',', '_')}_{spec.tpl_expno:03d}.fits"
    h["HIERARCH ESO DPR CATG"] = spec.dpr_catg
    h["HIERARCH ESO DPR TYPE"] = spec.dpr_type
    h["HIERARCH ESO DPR TECH"] = "IFU"
    h["HIERARCH ESO INS MODE"] = spec.ins_mode
    h["HIERARCH ESO INS OPTI1 NAME"] = "Blue_and_IR_Cut" if spec.ins_mode.endswith("-N") else "Filter_Out"
    h["HIERARCH ESO INS OPTI2 NAME"] = "NFM" if spec.ins_mode.startswith("NFM") else "WFM"
    h["HIERARCH ESO INS DROT MODE"] = "SKY"
    h["HIERARCH ESO INS DROT POSANG"] = 0.0
    h["HIERARCH ESO INS TEMP7 VAL"] = 12.0
    h["HIERARCH ESO INS TEMP11 VAL"] = 12.0
    h["HIERARCH ESO DET BINX"] = 1
    h["HIERARCH ESO DET BINY"] = 1
    h["HIERARCH ESO DET READ CURID"] = 1
    h["HIERARCH ESO DET READ CURNAME"] = "SCI1.0"
    h["HIERARCH ESO OBS NAME"] = spec.obs_name
    h["HIERARCH ESO OBS ID"] = spec.obs_id
    h["HIERARCH ESO OBS PROG ID"] = "60.A-9100(A)"
    h["HIERARCH ESO OBS TARG NAME"] = spec.target or "CALIB"
    h["HIERARCH ESO TPL ID"] = "MUSE_wfm_cal_synthetic" if spec.dpr_catg == "CALIB" else "MUSE_wfm_obs_synthetic"
    h["HIERARCH ESO TPL START"] = spec.tpl_start or spec.date_obs[:19]
    h["HIERARCH ESO TPL NEXP"] = spec.tpl_nexp
    h["HIERARCH ESO TPL EXPNO"] = spec.tpl_expno
    h["HIERARCH ESO TEL GEOLAT"] = PARANAL["lat"]
    h["HIERARCH ESO TEL GEOLON"] = PARANAL["lon"]
    h["HIERARCH ESO TEL GEOELEV"] = PARANAL["elev"]
    h["HIERARCH ESO TEL AIRM START"] = 1.0
    h["HIERARCH ESO TEL AIRM END"] = 1.0
    h["HIERARCH ESO TEL AMBI FWHM START"] = 0.8
    h["HIERARCH ESO TEL AMBI FWHM END"] = 0.8
    for key, value in spec.extra.items():
        h[f"HIERARCH {key}" if key.startswith("ESO ") else key] = value
    return h


def extension_header(ifu: int, model: ReadoutModel = ReadoutModel(), live: bool = True) -> fits.Header:
    """The CHANnn extension header: chip identity and the DET OUTn readout layout."""
    h = fits.Header()
    h["EXTNAME"] = f"CHAN{ifu:02d}"
    h["HIERARCH ESO DET CHIP NAME"] = f"SYNCCD{ifu:02d}"
    h["HIERARCH ESO DET CHIP ID"] = f"SYN-{ifu:02d}"
    h["HIERARCH ESO DET CHIP DATE"] = "2014-01-01"
    h["HIERARCH ESO DET CHIP INDEX"] = ifu
    h["HIERARCH ESO DET CHIP LIVE"] = live
    for port, (x, y) in PORT_POSITIONS.items():
        p = f"HIERARCH ESO DET OUT{port} "
        h[p + "NAME"] = "ABCD"[port - 1]
        h[p + "X"] = x
        h[p + "Y"] = y
        h[p + "NX"] = QUAD_NX
        h[p + "NY"] = QUAD_NY
        h[p + "PRSCX"] = PRESCAN
        h[p + "PRSCY"] = PRESCAN
        h[p + "OVSCX"] = OVERSCAN
        h[p + "OVSCY"] = OVERSCAN
        h[p + "GAIN"] = model.gain[port - 1]
        h[p + "RON"] = round(model.ron_adu[port - 1] * model.gain[port - 1], 4)
    return h
