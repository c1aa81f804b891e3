"""Header-rule association (OCA-equivalent): which calibration each exposure gets, and why."""
from __future__ import annotations

import pytest

from muse_operators.associate.rules import FALLBACK, GOOD, MISSING, associate, calibration_sets
from muse_operators.headers import RawFrame

NIGHT = 60300.0  # MJD of the night's noon


def frame(path: str, dpr_type: str, mjd: float, mode: str = "WFM-NOAO-N", catg: str = "CALIB", nexp: int = 3,
          tpl: str | None = None, temp: float | None = None, curname: str = "SCI1.0",
          pro: str | None = None) -> RawFrame:
    return RawFrame(path=f"/raw/{path}.fits", instrument="MUSE", dpr_catg=catg, dpr_type=dpr_type,
                    dpr_tech=None if pro else "IFU", pro_catg=pro, mjd_obs=mjd, date_obs=f"d{mjd:.5f}",
                    ins_mode=mode, tpl_start=tpl or f"T{mjd:.3f}", tpl_nexp=nexp, read_curname=curname, ins_temp7=temp)


def template(prefix: str, dpr_type: str, mjd: float, n: int = 3, **kw) -> list[RawFrame]:
    return [frame(f"{prefix}{i}", dpr_type, mjd + i * 0.001, tpl=f"{prefix}@{mjd}", nexp=n, **kw) for i in range(n)]


@pytest.fixture()
def pool() -> list[RawFrame]:
    frames = []
    frames += template("bias_n1_", "BIAS", NIGHT + 0.3)            # same day
    frames += template("bias_n0_", "BIAS", NIGHT - 2.7)            # 3 days earlier: further
    frames += template("flat_noao_", "FLAT,LAMP", NIGHT + 0.31)
    frames += template("flat_ao_", "FLAT,LAMP", NIGHT + 0.32, mode="WFM-AO-N")  # other mode, nearer in time
    frames += template("arc_", "WAVE", NIGHT + 0.32, n=9)
    frames += template("twi_", "FLAT,SKY", NIGHT - 10.0)           # 10 days earlier, inside ±30 d
    frames.append(frame("illum_early", "FLAT,LAMP,ILLUM", NIGHT + 0.60, nexp=1, temp=11.0))
    frames.append(frame("illum_warm", "FLAT,LAMP,ILLUM", NIGHT + 0.66, nexp=1, temp=14.0))
    frames.append(frame("illum_far", "FLAT,LAMP,ILLUM", NIGHT + 0.95, nexp=1, temp=11.9))
    frames.append(frame("std_other_night", "STD", NIGHT - 1.4, nexp=1))
    return frames


def test_nearest_matching_template_inside_the_oca_window(pool):
    science = frame("sci", "OBJECT", NIGHT + 0.65, catg="SCIENCE", nexp=1, temp=12.0)
    result = associate(science, calibration_sets(pool))
    assert result.choices["BIAS"].quality == GOOD
    assert [p.rsplit("/", 1)[1] for p in result.choices["BIAS"].paths] == [
        "bias_n1_0.fits", "bias_n1_1.fits", "bias_n1_2.fits"]
    flat = result.choices["FLAT"]
    assert flat.paths[0].endswith("flat_noao_0.fits"), "a nearer flat of another INS.MODE must not be taken"
    assert any("INS.MODE WFM-AO-N != WFM-NOAO-N" in r for r in flat.rejected)
    assert result.choices["ARC"].quality == GOOD and len(result.choices["ARC"].paths) == 9
    assert result.choices["SKYFLAT"].quality == GOOD and "within ±30 d" in result.choices["SKYFLAT"].reason
    assert result.errors == []


def test_illum_within_hours_with_the_closest_temperature(pool):
    science = frame("sci", "OBJECT", NIGHT + 0.65, catg="SCIENCE", nexp=1, temp=12.0)
    illum = associate(science, calibration_sets(pool)).choices["ILLUM"]
    # illum_warm is nearest in time (0.01 d) but 2 C off; illum_early (1.2 h) is 1 C off; illum_far is > 2 h.
    assert illum.paths == ["/raw/illum_early.fits"]
    assert illum.quality == GOOD and "closest INS.TEMP7" in illum.reason


def test_illum_far_in_time_is_a_fallback_and_none_is_a_note(pool):
    science = frame("sci", "OBJECT", NIGHT + 1.5, catg="SCIENCE", nexp=1, temp=12.0)
    illum = associate(science, calibration_sets(pool)).choices["ILLUM"]
    assert illum.quality == FALLBACK and illum.paths == ["/raw/illum_far.fits"] and "none within 2 h" in illum.reason
    late = frame("sci", "OBJECT", NIGHT + 5.0, catg="SCIENCE", nexp=1)
    assoc = associate(late, calibration_sets(pool))
    assert assoc.choices["ILLUM"].quality == MISSING
    assert "ILLUM" not in " ".join(assoc.errors), "ILLUM is optional"


def test_standard_star_from_another_night_is_flagged_not_hidden(pool):
    science = frame("sci", "OBJECT", NIGHT + 0.65, catg="SCIENCE", nexp=1)
    std = associate(science, calibration_sets(pool)).choices["STD"]
    assert std.quality == FALLBACK and std.paths == ["/raw/std_other_night.fits"]
    assert "2.05 d away, outside the OCA window of ±1 d" in std.reason


def test_missing_required_calibration_is_an_error_with_the_reason(pool):
    science = frame("sci", "OBJECT", NIGHT + 0.65, mode="NFM-AO-N", catg="SCIENCE", nexp=1)
    result = associate(science, calibration_sets(pool))
    assert result.choices["FLAT"].quality == MISSING
    assert any("no FLAT with matching INS.MODE and readout (required)" in e for e in result.errors)
    assert result.choices["BIAS"].quality == GOOD, "bias does not depend on the mode"


def test_too_short_templates_and_other_readouts_are_rejected(pool):
    pool += template("bias_short_", "BIAS", NIGHT + 0.64, n=2)        # nearest, but the OCA needs TPL.NEXP >= 3
    pool += template("bias_slow_", "BIAS", NIGHT + 0.649, curname="SLOW")
    science = frame("sci", "OBJECT", NIGHT + 0.65, catg="SCIENCE", nexp=1)
    bias = associate(science, calibration_sets(pool)).choices["BIAS"]
    assert bias.paths[0].endswith("bias_n1_0.fits")
    assert any("CURNAME SLOW != SCI1.0" in r for r in bias.rejected)


def test_eso_masters_are_matched_per_exposure_not_last_file_wins():
    masters = [
        frame("M.bias_jan01", "", 60310.4, pro="MASTER_BIAS", nexp=1),
        frame("M.bias_jan05", "", 60314.4, pro="MASTER_BIAS", nexp=1),
        frame("M.flat_jan05_ao", "", 60314.4, pro="MASTER_FLAT", mode="WFM-AO-N", nexp=1),
        frame("M.flat_jan01", "", 60310.4, pro="MASTER_FLAT", nexp=1),
        frame("M.lsf_old", "", 60100.0, pro="LSF_PROFILE", nexp=1),
    ]
    sets = calibration_sets(masters)
    early = associate(frame("sci1", "OBJECT", 60310.6, catg="SCIENCE", nexp=1), sets, use_eso_masters=True)
    late = associate(frame("sci2", "OBJECT", 60314.6, catg="SCIENCE", nexp=1), sets, use_eso_masters=True)
    assert early.choices["MASTER_BIAS"].paths == ["/raw/M.bias_jan01.fits"]
    assert late.choices["MASTER_BIAS"].paths == ["/raw/M.bias_jan05.fits"]
    assert late.choices["MASTER_FLAT"].paths == ["/raw/M.flat_jan01.fits"]  # mode beats time
    assert late.choices["MASTER_FLAT"].quality == FALLBACK                  # 4.2 d > ±3 d
    assert late.choices["LSF_PROFILE"].quality == GOOD                      # no time limit in the OCA
    assert any("TRACE_TABLE" in e for e in late.errors)


def test_disagreements_between_rules_and_the_archive_xml_are_reported(tmp_path, pool):
    from muse_operators.associate.report import compare, xml_files_for

    science_path = tmp_path / "MUSE.2024-01-01T01:02:03.456.fits.fz"
    xml = tmp_path / "MUSE.2024-01-01T01:02:03.456_raw2raw.xml"
    xml.write_text(
        '<association category="SCI_WFM" certified="true" complete="true" mode="Raw2Raw" type="main">'
        '<mainFiles><file category="OBJECT" name="MUSE.2024-01-01T01:02:03.456"/></mainFiles><associatedFiles>'
        '<association category="BIAS" match="calib_plan"><mainFiles>'
        + "".join(f'<file category="BIAS" name="bias_n1_{i}"/>' for i in range(3))
        + '</mainFiles></association>'
        '<association category="ILLUM" match="calib_plan"><mainFiles><file category="ILLUM" name="illum_warm"/>'
        '</mainFiles></association>'
        '<association category="SKYFLAT" match="calib_plan"><mainFiles>'
        + "".join(f'<file category="SKYFLAT" name="twi_{i}"/>' for i in range(3))
        + '</mainFiles><associatedFiles><association category="BIAS"><mainFiles>'
        '<file category="BIAS" name="bias_twilight"/></mainFiles></association></associatedFiles></association>'
        '</associatedFiles></association>')
    science = frame("sci", "OBJECT", NIGHT + 0.65, catg="SCIENCE", nexp=1, temp=12.0)
    science = RawFrame(**{**science.__dict__, "path": str(science_path)})
    rules = associate(science, calibration_sets(pool))
    differences = {d.tag: d for d in compare(rules, xml_files_for(science_path))}
    assert "BIAS" not in differences, "the sky flat's own bias (nested) is not a choice for the exposure"
    assert "SKYFLAT" not in differences
    assert differences["ILLUM"].only_rules == ("illum_early",) and differences["ILLUM"].only_xml == ("illum_warm",)
    assert "the archive association lists illum_warm" in differences["ILLUM"].describe()
    assert differences["FLAT"].only_rules == ("flat_noao_0", "flat_noao_1", "flat_noao_2")
    assert xml_files_for(tmp_path / "MUSE.2024-01-02T00:00:00.000.fits") is None
