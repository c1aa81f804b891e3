"""The planning core end to end on header sets written with astropy, through ``muse-airflow plan``.

Two nights, WFM-NOAO and WFM-AO OBs, an external SKY, a standard star only on the second night, an
exposure with no ILLUM within a day, static calibrations beside the raw data, an ESO association XML
that contradicts the header rules, and a MUSEreduce-era config file (old key spellings).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from muse_operators.cli import main
from muse_operators.synthetic.headers import FrameSpec, extension_header, primary_header

NIGHT1, NIGHT2 = 60300.0, 60301.0


def write(raw: Path, spec: FrameSpec, ifus=(1, 2)) -> Path:
    """A small but real raw file: MUSE primary header, live CHANnn extensions (tiny images)."""
    hdus = [fits.PrimaryHDU(header=primary_header(spec))]
    hdus += [fits.ImageHDU(np.zeros((4, 4), np.uint16), extension_header(i)) for i in ifus]
    path = raw / f"{spec.archive_name}.fits"
    fits.HDUList(hdus).writeto(path)
    return path


def template(raw: Path, dpr_type: str, mjd: float, n: int = 3, mode: str = "WFM-NOAO-N") -> list[Path]:
    start = FrameSpec("CALIB", dpr_type, mjd).date_obs[:19]
    return [write(raw, FrameSpec("CALIB", dpr_type, mjd + i * 60 / 86400, exptime=10.0, ins_mode=mode,
                                 tpl_start=start, tpl_nexp=n, tpl_expno=i + 1)) for i in range(n)]


def science(raw: Path, dpr_type: str, mjd: float, ob: str, obs_id: int, mode: str = "WFM-NOAO-N",
            ra: float = 150.0, posang: float = 0.0, exptime: float = 600.0) -> Path:
    spec = FrameSpec("SCIENCE", dpr_type, mjd, exptime=exptime, ins_mode=mode, obs_name=ob, obs_id=obs_id,
                     target="NGC1", ra=ra, dec=-30.0, extra={"ESO INS DROT POSANG": posang})
    return write(raw, spec)


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> dict:
    raw = tmp_path_factory.mktemp("pool")
    static = raw / "static"
    static.mkdir()
    for catg in ("LINE_CATALOG", "GEOMETRY_TABLE", "EXTINCT_TABLE", "STD_FLUX_TABLE", "SKY_LINES", "FILTER_LIST"):
        header = fits.Header({"INSTRUME": "MUSE", "HIERARCH ESO PRO CATG": catg})
        fits.PrimaryHDU(header=header).writeto(static / f"{catg.lower()}.fits")
    files = {"bias": template(raw, "BIAS", NIGHT1 + 0.70), "flat": template(raw, "FLAT,LAMP", NIGHT1 + 0.71),
             "arc": template(raw, "WAVE", NIGHT1 + 0.72, n=9),
             "flat_ao": template(raw, "FLAT,LAMP", NIGHT1 + 0.73, mode="WFM-AO-N"),
             "arc_ao": template(raw, "WAVE", NIGHT1 + 0.74, n=9, mode="WFM-AO-N"),
             "twilight": template(raw, "FLAT,SKY", NIGHT1 + 0.99)}
    files["illum"] = write(raw, FrameSpec("CALIB", "FLAT,LAMP,ILLUM", NIGHT1 + 1.05, exptime=5.0, tpl_nexp=1))
    files["illum_other"] = write(raw, FrameSpec("CALIB", "FLAT,LAMP,ILLUM", NIGHT1 + 1.20, exptime=5.0, tpl_nexp=1))
    files["std"] = write(raw, FrameSpec("CALIB", "STD", NIGHT2 + 1.10, exptime=30.0, ra=151.0, dec=-30.0, tpl_nexp=1))
    files["a1"] = science(raw, "OBJECT", NIGHT1 + 1.06, "NGC1_wfm", 11)
    files["a2"] = science(raw, "OBJECT", NIGHT1 + 1.07, "NGC1_wfm", 11, posang=90.0, ra=150.0002)
    files["sky"] = science(raw, "SKY", NIGHT1 + 1.08, "NGC1_wfm", 11, ra=150.3, exptime=300.0)
    files["ao"] = science(raw, "OBJECT", NIGHT1 + 1.10, "NGC1_ao", 12, mode="WFM-AO-N")
    files["late"] = science(raw, "OBJECT", NIGHT2 + 1.25, "NGC1_late", 13)  # 1.05 d after the last ILLUM
    stem = files["a1"].name[: -len(".fits")]
    (raw / f"{stem}_raw2raw.xml").write_text(
        '<association category="SCI_WFM" certified="true" complete="true" mode="Raw2Raw" type="main">'
        f'<mainFiles><file category="OBJECT" name="{stem}"/></mainFiles><associatedFiles>'
        '<association category="ILLUM" match="calib_plan"><mainFiles>'
        f'<file category="ILLUM" name="{files["illum_other"].name[:-5]}"/></mainFiles></association>'
        '</associatedFiles></association>')
    raw.chmod(0o755)
    return {"raw": raw, **files}


def run_plan(capsys, *args: str) -> tuple[int, str]:
    code = main(["plan", *args])
    return code, capsys.readouterr().out


def test_config_notes_and_warnings_reach_the_plan_text_and_json(pool, tmp_path, capsys):
    """What loading the config says (a renamed key; own-calibration settings that ESO masters make moot) is
    printed by ``plan`` and listed in ``--json``: before, only the DAG's plan task printed it."""
    config = tmp_path / "musereduce.json"
    config.write_text(json.dumps({"global": {"using_ESO_calibration": True},  # MUSEreduce's spelling
                                  "calibration": {"esorex_kwargs_bias": "--combine=median"}}))
    _, text = run_plan(capsys, str(pool["raw"]), str(tmp_path / "out"), "--config", str(config))
    notes = [line for line in text.splitlines() if line.startswith("config: ")]
    warnings = [line for line in text.splitlines() if line.startswith("WARNING config: ")]
    assert any("using_ESO_calibration" in line for line in notes), text[:3000]
    assert any("calibration.esorex_kwargs_bias" in line for line in warnings), text[:3000]
    _, as_json = run_plan(capsys, str(pool["raw"]), str(tmp_path / "out"), "--config", str(config), "--json")
    plan = json.loads(as_json)
    assert [f"config: {n}" for n in plan["config_notes"]] == notes
    assert [f"WARNING config: {w}" for w in plan["config_warnings"]] == warnings


def test_plan_of_a_two_night_pool_with_a_musereduce_config(pool, tmp_path, capsys):
    config = tmp_path / "musereduce.json"
    config.write_text(json.dumps({"global": {"using_ESO_calibration": False},
                                  "sci_basic": {"sky_reject": "15.,15.,1"}}))
    code, text = run_plan(capsys, str(pool["raw"]), str(tmp_path / "out"), "--config", str(config), "--json")
    plan = json.loads(text)
    # the only standard star was taken in WFM-NOAO: the AO exposure has no flux calibration (OCA: same INS.MODE)
    assert plan["errors"] == ["NGC1_ao/100000-300000_0600_000_00: muse_scipost needs STD_RESPONSE: no standard "
                              "star (STD) or ESO STD_RESPONSE for this exposure"]
    assert code == 1
    steps = {s["name"]: s for s in plan["steps"]}
    by_stage = {}
    for s in plan["steps"]:
        by_stage.setdefault(s["stage"], []).append(s["name"])
    assert len(by_stage["scibasic"]) == 2 * 6  # a1, a2, sky, ao, late, std on IFUs 1 and 2
    assert len(by_stage["scipost"]) == 3 and len(by_stage["exp_combine"]) == 1
    ao = next(s for n, s in steps.items() if n.startswith("scibasic.NGC1_ao.") and n.endswith(".01"))
    assert {i["step"] for i in ao["inputs"] if i["tag"] == "MASTER_FLAT"} == {
        next(n for n in steps if n.startswith("flat.") and n.endswith(".01")
             and steps[n]["inputs"][0]["path"] == str(pool["flat_ao"][0]))}
    report = "\n".join(plan["report"])
    # the archive XML picks illum_other, the rules the ILLUM closest in time and temperature
    assert f"XML disagreement: {pool['a1'].name} ILLUM" in report
    assert "ILLUM          [missing] no ILLUM within ±1 d" in report  # the second night's exposure
    assert "STD            [fallback]" in report  # the standard star is from the other night
    late_std = next(s for n, s in steps.items() if n.startswith("scipost.NGC1_late"))
    assert {i["tag"] for i in late_std["inputs"]} >= {"STD_RESPONSE", "STD_TELLURIC", "EXTINCT_TABLE"}


def test_plan_errors_are_reported_and_exit_non_zero(pool, tmp_path, capsys):
    code, text = run_plan(capsys, str(pool["raw"]))  # default config: using_ESO_Calibration = true
    assert code == 1
    assert "global.using_ESO_Calibration is true but the pool has no ESO master calibrations" in text
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"sky": {"sky_feild": "auto"}}))
    code = main(["plan", str(pool["raw"]), "--config", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and "sky.sky_feild: unknown setting; did you mean 'sky_field'?" in err


def test_eso_master_calibrations_are_matched_to_the_exposure(tmp_path, capsys):
    """using_ESO_Calibration (the MUSEreduce default): archive masters by PRO.CATG, nearest valid per exposure."""
    raw = tmp_path / "raw"
    raw.mkdir(mode=0o755)

    def master(catg: str, mjd: float, mode: str = "WFM-NOAO-N") -> Path:
        spec = FrameSpec("CALIB", "", mjd, ins_mode=mode)
        header = primary_header(spec)
        header["HIERARCH ESO PRO CATG"] = catg
        path = raw / f"M.{spec.archive_name}_{catg}.fits"
        fits.PrimaryHDU(header=header).writeto(path)
        return path

    night1 = {c: master(c, NIGHT1 + 0.8) for c in ("MASTER_BIAS", "MASTER_FLAT", "TRACE_TABLE", "WAVECAL_TABLE",
                                                   "LSF_PROFILE", "TWILIGHT_CUBE", "STD_RESPONSE", "STD_TELLURIC")}
    night5 = {c: master(c, NIGHT1 + 4.8) for c in ("MASTER_BIAS", "MASTER_FLAT", "TRACE_TABLE", "WAVECAL_TABLE")}
    for catg in ("GEOMETRY_TABLE", "EXTINCT_TABLE", "SKY_LINES"):
        fits.PrimaryHDU(header=fits.Header({"INSTRUME": "MUSE", "HIERARCH ESO PRO CATG": catg})).writeto(
            raw / f"{catg.lower()}.fits")
    exposure = science(raw, "OBJECT", NIGHT1 + 4.1, "late", 21)  # 3.3 d after night 1, 0.7 d before night 5
    code, text = run_plan(capsys, str(raw), str(tmp_path / "out"), "--json")
    plan = json.loads(text)
    assert code == 0 and plan["errors"] == []
    scibasic = next(s for s in plan["steps"] if s["name"].startswith("scibasic.late.") and s["ifu"] == 1)
    chosen = {i["tag"]: i["path"] for i in scibasic["inputs"]}
    assert chosen["MASTER_BIAS"] == str(night5["MASTER_BIAS"])  # nearest in time wins
    assert chosen["TWILIGHT_CUBE"] == str(night1["TWILIGHT_CUBE"])  # only one, inside its ±30 d window
    assert chosen["OBJECT"] == str(exposure)
    scipost = next(s for s in plan["steps"] if s["stage"] == "scipost")
    assert {i["tag"]: i["path"] for i in scipost["inputs"] if i["tag"].startswith("STD_")} == {
        "STD_RESPONSE": str(night1["STD_RESPONSE"]), "STD_TELLURIC": str(night1["STD_TELLURIC"])}
    assert not [s for s in plan["steps"] if s["stage"] in ("bias", "flat", "wavecal", "lsf", "twilight")]
