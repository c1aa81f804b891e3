"""Header-only frames (RawFrame values, no FITS files) for planner tests: a night the planners can reduce.

The ``header_night`` fixture (conftest.py) gives a fresh list of :func:`night_frames` to each test.
"""
from __future__ import annotations

from muse_operators.headers import RawFrame

NOON = 60300.5
IFUS = [1, 2]
OWN_CALIBRATIONS = {"global": {"using_ESO_Calibration": False}}


def raw(name: str, catg: str, dpr_type: str, mjd: float, *, nexp: int = 3, tpl: str | None = None, ob: str = "",
        obs_id: int | None = None, ra: float = 150.0, dec: float = -30.0, exptime: float = 600.0, posang: float = 0.0,
        mode: str = "WFM-NOAO-N", pro: str | None = None) -> RawFrame:
    return RawFrame(path=f"/raw/{name}.fits", instrument="MUSE", dpr_catg=catg, dpr_type=dpr_type,
                    dpr_tech=None if pro else "IFU", pro_catg=pro, mjd_obs=mjd, date_obs=f"D{mjd:.6f}",
                    exptime=exptime, ra=ra, dec=dec, ins_mode=mode, posang=posang, obs_name=ob or None,
                    obs_id=obs_id, tpl_start=tpl or f"T{mjd:.4f}", tpl_nexp=nexp, tpl_expno=1,
                    read_curname="SCI1.0", ins_temp7=12.0, arcfile=f"{name}.fits", ifus=list(IFUS))


def calib_template(prefix: str, dpr_type: str, mjd: float, n: int = 3) -> list[RawFrame]:
    return [raw(f"{prefix}{i}", "CALIB", dpr_type, mjd + i * 1e-3, tpl=f"{prefix}", nexp=n) for i in range(n)]


def statics() -> list[RawFrame]:
    return [raw(f"static_{c.lower()}", "", "", 57000.0, nexp=1, pro=c) for c in
            ("LINE_CATALOG", "GEOMETRY_TABLE", "EXTINCT_TABLE", "STD_FLUX_TABLE", "FILTER_LIST", "SKY_LINES")]


def night_frames() -> list[RawFrame]:
    """One night: statics, calibration templates, an ILLUM, last night's STD, two OBs (OBJECT and SKY)."""
    frames = statics()
    frames += calib_template("bias", "BIAS", NOON + 0.2) + calib_template("flat", "FLAT,LAMP", NOON + 0.21)
    frames += calib_template("arc", "WAVE", NOON + 0.22, n=9) + calib_template("twi", "FLAT,SKY", NOON + 0.27)
    frames.append(raw("illum", "CALIB", "FLAT,LAMP,ILLUM", NOON + 0.45, nexp=1))
    frames.append(raw("std", "CALIB", "STD", NOON - 0.6, nexp=1, exptime=30.0, ra=151.0))  # previous night
    ob1 = dict(ob="NGC1_a", obs_id=1001)
    frames += [raw("sci1", "SCIENCE", "OBJECT", NOON + 0.40, **ob1),
               raw("sci2", "SCIENCE", "OBJECT", NOON + 0.41, posang=90.0, ra=150.0003, **ob1),
               raw("sky1", "SCIENCE", "SKY", NOON + 0.42, exptime=300.0, ra=150.2, **ob1)]
    ob2 = dict(ob="NGC1_b", obs_id=1002)
    frames += [raw("sci3", "SCIENCE", "OBJECT", NOON + 0.50, posang=180.0, **ob2),
               raw("sci4", "SCIENCE", "OBJECT", NOON + 0.51, exptime=900.0, **ob2)]
    return frames
