"""Grouping of science frames into OBs, exposures and pointings, with MUSEreduce-compatible names.

The frames are real primary headers (the synthetic ``primary_header``) read back with ``RawFrame.from_header``.
Positions are written in sexagesimal, so every expected ``RADEC`` below can be read off by eye.
"""
from __future__ import annotations

import random
from dataclasses import replace

import pytest

from muse_operators.grouping import (
    GroupingError, auto_create_ob_list, combine_obs, describe, group_science, select_exposures,
)
from muse_operators.headers import RawFrame
from muse_operators.naming import exposure_name, folder_name, pointing_name, radec_string
from muse_operators.synthetic.headers import FrameSpec, primary_header


def ra(h: int, m: int, s: float) -> float:
    return 15.0 * (h + m / 60 + s / 3600)


def dec(sign: int, d: int, m: int, s: float) -> float:
    return sign * (d + m / 60 + s / 3600)


A = (ra(18, 4, 31), dec(-1, 24, 23, 16))  # 180431-242316 (NGC 6530)
A_NORTH_1 = (ra(18, 4, 31), dec(-1, 24, 23, 15))  # 1 arcsec north: 180431-242315
A_EAST_2S = (ra(18, 4, 33), dec(-1, 24, 23, 16))  # 2 s of RA = 27 arcsec: 180433-242316
A_SOUTH_10 = (ra(18, 4, 31), dec(-1, 24, 33, 16))  # 10 arcmin south: 180431-243316
SKY = (ra(18, 6, 0), dec(-1, 24, 0, 0))  # 180600-240000
B = (ra(5, 35, 17), dec(+1, 22, 0, 52))  # 053517+220052
C = (ra(0, 5, 12), dec(-1, 0, 30, 0))  # 000512-003000: Dec between -1 and 0; RA digits hold "0005"

# (OBS NAME, OBS ID, MJD-OBS, DPR TYPE, EXPTIME, POSANG, position, expected exposure name)
SCIENCE = [
    ("WFM-NGC6530-tile-1", 1001, 58600.00, "OBJECT", 5, 0.0, A, "180431-242316_0005_000_00"),
    ("WFM-NGC6530-tile-1", 1001, 58600.01, "OBJECT", 860, 0.0, A, "180431-242316_0860_000_00"),
    ("WFM-NGC6530-tile-1", 1001, 58600.02, "OBJECT", 860, 90.0, A_NORTH_1, "180431-242315_0860_090_00"),
    ("WFM-NGC6530-tile-1", 1001, 58600.03, "OBJECT", 860, 180.0, A_EAST_2S, "180433-242316_0860_180_00"),
    ("WFM-NGC6530-tile-1", 1001, 58600.04, "OBJECT", 860, 0.4, A, "180431-242316_0860_000_01"),
    ("WFM-NGC6530-tile-1", 1001, 58600.05, "SKY", 120, 0.0, SKY, "180600-240000_0120_000_00"),
    ("WFM-NGC6530-tile-1", 1001, 58600.06, "OBJECT", 5, 90.0, A, "180431-242316_0005_090_00"),
    ("WFM-NGC6530-tile-1", 1001, 58600.07, "OBJECT", 860, 0.0, A_SOUTH_10, "180431-243316_0860_000_00"),
    ("WFM-NGC6530-tile-1b", 1002, 58601.00, "OBJECT", 860, 0.0, A, "180431-242316_0860_000_00"),
    ("WFM-NGC6530-tile-1b", 1002, 58601.01, "OBJECT", 860, 90.0, A, "180431-242316_0860_090_00"),
    ("NGC6611", 2001, 58602.00, "OBJECT", 600, 0.0, B, "053517+220052_0600_000_00"),
    ("NGC6611", 2002, 58603.00, "OBJECT", 600, 0.0, B, "053517+220052_0600_000_00"),
    ("Field C (equator)", 3001, 58604.00, "OBJECT", 5, 0.0, C, "000512-003000_0005_000_00"),
    ("Field C (equator)", 3001, 58604.01, "OBJECT", 120, 0.0, C, "000512-003000_0120_000_00"),
]
OB1, OB2, OB3, OB4, OB5 = "WFM-NGC6530-tile-1", "WFM-NGC6530-tile-1b", "NGC6611_2001", "NGC6611_2002", "Field_C_equator"
OB_OF = {1001: OB1, 1002: OB2, 2001: OB3, 2002: OB4, 3001: OB5}


def frame(spec: FrameSpec, posang: float, path: str) -> RawFrame:
    header = primary_header(replace(spec, extra={"ESO INS DROT POSANG": posang}))
    return RawFrame.from_header(path, header)


def science_frames() -> list[RawFrame]:
    """Science frames named so that file-name (glob) order is the *reverse* of time order."""
    frames = []
    for i, (name, obs_id, mjd, dpr_type, exptime, posang, (r, d), _) in enumerate(SCIENCE):
        spec = FrameSpec("SCIENCE", dpr_type, mjd, exptime=exptime, obs_name=name, obs_id=obs_id, ra=r, dec=d,
                         ins_mode="WFM-NOAO-N", target="NGC")
        frames.append(frame(spec, posang, f"/raw/frame_{99 - i:02d}.fits.fz"))
    return frames


def calibration_frames() -> list[RawFrame]:
    """A standard star and a bias: in the pool, but not exposures."""
    std = FrameSpec("CALIB", "STD", 58600.2, exptime=30, obs_name="STD", obs_id=9001, ra=A[0], dec=A[1])
    bias = FrameSpec("CALIB", "BIAS", 58600.5, tpl_nexp=3)
    return [frame(std, 0.0, "/raw/std.fits.fz"), frame(bias, 0.0, "/raw/bias.fits.fz")]


@pytest.fixture(scope="module")
def obs():
    return group_science(science_frames() + calibration_frames())


def names(obs) -> dict[str, str]:
    """qualified exposure name -> ARCFILE (the header identity of the frame)."""
    return {e.qualified_name: e.frame.arcfile for ob in obs for e in ob.exposures}


def by_name(obs, name):
    return next(ob for ob in obs if ob.name == name)


# --- naming ---------------------------------------------------------------------------------------------


def test_radec_string_matches_musereduce_format_including_sign_and_wrap_quirks():
    assert radec_string(156.0, -57.76) == "102400-574536"  # the behaviour notes' example
    assert radec_string(*A) == "180431-242316"
    assert radec_string(*B) == "053517+220052"
    assert radec_string(*C) == "000512-003000"
    assert radec_string(0.0, 0.0) == "000000+000000"
    assert radec_string(0.0, -0.0001) == "000000-000000"  # rounds to zero but keeps the minus sign
    assert radec_string(15.0, -0.99999) == "010000-010000"  # rounding carries into degrees
    assert radec_string(359.9999, 10.0) == "240000+100000"  # astropy rounds after wrapping: 24h, not 0h
    assert radec_string(360.0, 10.0) == "000000+100000"


def test_exposure_and_pointing_names_are_padded_and_truncated_like_musereduce():
    assert exposure_name("180431-242316", 860.0, 90.7, 1) == "180431-242316_0860_090_01"
    assert exposure_name("180431-242316", 5.9, 0.0, 0) == "180431-242316_0005_000_00"
    assert exposure_name("180431-242316", 12000, 359.99, 123) == "180431-242316_12000_359_123"
    assert pointing_name("091315-403023", 2800) == "091315-403023_2800"
    with pytest.raises(ValueError, match="counter"):
        exposure_name("180431-242316", 860, 0, -1)
    with pytest.raises(ValueError, match="EXPTIME"):
        pointing_name("180431-242316", float("nan"))


def test_folder_name_keeps_eso_ob_names_and_makes_others_safe():
    assert folder_name("WFM-AO-NGC6530---tile-1") == "WFM-AO-NGC6530---tile-1"
    assert folder_name("Field C (equator)") == "Field_C_equator"
    assert folder_name("../etc/passwd") == "etc_passwd"
    assert folder_name("-rf") == "rf"
    assert folder_name("..") == ""


# --- OBs and exposures ----------------------------------------------------------------------------------


def test_exposure_names_counters_and_obs(obs):
    expected = {f"{OB_OF[obs_id]}/{name}" for _, obs_id, *_, name in SCIENCE}
    assert set(names(obs)) == expected and len(expected) == len(SCIENCE)
    assert [ob.name for ob in obs] == [OB1, OB2, OB3, OB4, OB5]
    ob1 = by_name(obs, OB1)
    # time order, although the later frame's file name sorts first (frame_95 < frame_98)
    first, again = (e for e in ob1.exposures if e.name.startswith("180431-242316_0860_000_"))
    assert (first.name, first.frame.path, again.name, again.frame.path) == (
        "180431-242316_0860_000_00", "/raw/frame_98.fits.fz", "180431-242316_0860_000_01", "/raw/frame_95.fits.fz")
    assert [e.tag for e in ob1.exposures].count("SKY") == 1
    assert all(e.tag in ("OBJECT", "SKY") for ob in obs for e in ob.exposures)  # STD and BIAS are not exposures
    assert [ob.obs_id for ob in obs] == [1001, 1002, 2001, 2002, 3001]


def test_same_obs_name_with_different_obs_id_is_disambiguated_by_the_id(obs):
    ob3, ob4 = by_name(obs, OB3), by_name(obs, OB4)
    assert (ob3.obs_name, ob3.obs_id, ob4.obs_name, ob4.obs_id) == ("NGC6611", 2001, "NGC6611", 2002)
    assert "OBS ID appended (OBS ID 2002 too)" in ob3.name_reason
    assert by_name(obs, OB5).name_reason == "named after OBS NAME (made folder-safe)"


def test_an_ob_without_usable_obs_name_is_named_after_its_id_and_nameless_clashes_are_refused():
    spec = FrameSpec("SCIENCE", "OBJECT", 58700.0, exptime=60, obs_name="///", obs_id=4242, ra=B[0], dec=B[1])
    [ob] = group_science([frame(spec, 0.0, "/raw/x.fits")])
    assert (ob.name, ob.name_reason, ob.exposures[0].qualified_name) == (
        "4242", "no usable OBS NAME", "4242/053517+220052_0060_000_00")
    first = replace(frame(spec, 0.0, "/raw/a.fits"), obs_name="a b", obs_id=None)
    second = replace(frame(replace(spec, mjd_obs=58700.1), 0.0, "/raw/b.fits"), obs_name="a/b", obs_id=None)
    with pytest.raises(GroupingError, match=r"OBs \['a_b'\] cannot be told apart"):
        group_science([first, second])


def test_names_do_not_depend_on_frame_order_or_file_names(obs):
    reference = names(obs)
    frames = science_frames() + calibration_frames()
    for seed in range(5):
        shuffled = frames[:]
        random.Random(seed).shuffle(shuffled)
        assert names(group_science(shuffled)) == reference
    renamed = [replace(f, path=f"/elsewhere/{f.arcfile[::-1]}") for f in reversed(frames)]
    assert names(group_science(renamed)) == reference


def test_counters_are_per_ob_so_adding_other_obs_renames_nothing(obs):
    alone = group_science([f for f in science_frames() if f.obs_id == 1002])
    assert names(alone) == {k: v for k, v in names(obs).items() if k.startswith(OB2 + "/")}


def test_bad_science_frames_are_all_reported():
    frames = science_frames()
    frames[1] = replace(frames[1], posang=None)
    frames[2] = replace(frames[2], ra=None)
    duplicate = replace(frames[3], path="/raw/copy.fits")
    with pytest.raises(GroupingError) as err:
        group_science(frames + [duplicate])
    message = str(err.value)
    assert "/raw/frame_98.fits.fz: OBJECT frame without ESO INS DROT POSANG" in message
    assert "/raw/frame_97.fits.fz: OBJECT frame without RA" in message
    assert f"ARCFILE {frames[3].arcfile} is in the raw data 2 times (/raw/copy.fits, /raw/frame_96.fits.fz)" in message


# --- pointings ------------------------------------------------------------------------------------------


def pointing_map(pointings) -> dict[str, list[str]]:
    return {p.name: [e.qualified_name for e in p.exposures] for p in pointings}


def test_pointings_within_an_ob_group_small_dithers(obs):
    ob1 = by_name(obs, OB1)
    assert pointing_map(ob1.pointings) == {
        "180431-242316_0005": [f"{OB1}/180431-242316_0005_000_00", f"{OB1}/180431-242316_0005_090_00"],
        "180431-242316_0860": [f"{OB1}/180431-242316_0860_000_00", f"{OB1}/180431-242315_0860_090_00",
                               f"{OB1}/180433-242316_0860_180_00", f"{OB1}/180431-242316_0860_000_01"],
        "180431-243316_0860": [f"{OB1}/180431-243316_0860_000_00"],
    }
    assert {e.name: e.pointing for e in ob1.exposures}["180600-240000_0120_000_00"] is None  # SKY
    assert {e.name: e.pointing for e in ob1.exposures}["180433-242316_0860_180_00"] == "180431-242316_0860"
    lines = "\n".join(describe(obs))
    assert f"27.3 arcsec from first exposure {OB1}/180431-242316_0860_000_00 (<= 60)" in lines
    assert "counter 01: number 2 of 2 with 180431-242316_0860_000 in OB WFM-NGC6530-tile-1 by MJD-OBS" in lines


def test_musereduce_grouping_splits_dithers_into_separate_pointings():
    ob1 = group_science(science_frames(), radius_arcsec=None)[0]
    assert pointing_map(ob1.pointings) == {
        "180431-242316_0005": [f"{OB1}/180431-242316_0005_000_00", f"{OB1}/180431-242316_0005_090_00"],
        "180431-242316_0860": [f"{OB1}/180431-242316_0860_000_00", f"{OB1}/180431-242316_0860_000_01"],
        "180431-242315_0860": [f"{OB1}/180431-242315_0860_090_00"],
        "180433-242316_0860": [f"{OB1}/180433-242316_0860_180_00"],
        "180431-243316_0860": [f"{OB1}/180431-243316_0860_000_00"],
    }


def test_another_ins_mode_at_the_same_position_is_another_pointing():
    specs = [FrameSpec("SCIENCE", "OBJECT", 58700.0 + i / 100, exptime=600, obs_name="modes", obs_id=5, ra=A[0],
                       dec=A[1], ins_mode=mode) for i, mode in enumerate(["WFM-NOAO-N", "WFM-AO-N", "WFM-NOAO-N"])]
    [ob] = group_science([frame(s, 0.0, f"/raw/{i}.fits") for i, s in enumerate(specs)])
    assert pointing_map(ob.pointings) == {
        "180431-242316_0600": ["modes/180431-242316_0600_000_00", "modes/180431-242316_0600_000_02"],
        "180431-242316_0600_WFM-AO-N": ["modes/180431-242316_0600_000_01"],
    }
    with pytest.raises(GroupingError, match="pointing radius must be > 0"):
        group_science([frame(specs[0], 0.0, "/raw/0.fits")], radius_arcsec=0)


# --- OB lists -------------------------------------------------------------------------------------------


def test_auto_ob_list_is_every_science_ob_by_first_exposure(obs):
    assert auto_create_ob_list(reversed(obs)) == [OB1, OB2, OB3, OB4, OB5]


def test_a_pointing_split_over_two_obs_is_combined(obs):
    pointings = combine_obs(obs, [OB1, 1002])
    assert [p.name for p in pointings] == ["180431-242316_0005", "180431-242316_0860", "180431-243316_0860"]
    combined = pointings[1]
    assert combined.obs == (OB1, OB2)
    assert [e.qualified_name for e in combined.exposures][-2:] == [
        f"{OB2}/180431-242316_0860_000_00", f"{OB2}/180431-242316_0860_090_00"]
    assert len(combined.exposures) == 6
    assert pointing_map(combine_obs(obs, ["NGC6611_2002", "2001"])) == {
        "053517+220052_0600": [f"{OB3}/053517+220052_0600_000_00", f"{OB4}/053517+220052_0600_000_00"]}


def test_ob_list_errors_name_the_setting_and_the_valid_obs(obs):
    with pytest.raises(GroupingError) as err:
        combine_obs(obs, ["tile-2"])
    assert str(err.value).startswith("global.OB_list: 'tile-2' is not an OB with science frames. Valid OBs: "
                                     f"{OB1} (OBS ID 1001), {OB2} (OBS ID 1002), ")
    with pytest.raises(GroupingError, match=f"'NGC6611' is the OBS NAME of OBs {OB3}, {OB4}: list those meant"):
        combine_obs(obs, ["NGC6611"])
    with pytest.raises(GroupingError, match=f"'1001' is OB {OB1}, already listed as '{OB1}'"):
        combine_obs(obs, [OB1, "1001"])
    with pytest.raises(GroupingError, match="dither_multiple_OBs needs global.OB_list"):
        combine_obs(obs, [])
    assert [p.name for p in combine_obs(obs, ["Field C (equator)"])] == ["000512-003000_0005", "000512-003000_0120"]


# --- selection ------------------------------------------------------------------------------------------


def kept(selection) -> list[str]:
    return [e.qualified_name for e in selection.exposures]


def test_specific_exposure_time_matches_exactly_not_radec_digits(obs):
    ob5 = by_name(obs, OB5)
    # MUSEreduce's glob *0005*_SCI.list also matched 000512-003000_0120_000_00 (RADEC starts with 0005)
    assert kept(select_exposures(ob5, exposure_time=5)) == [f"{OB5}/000512-003000_0005_000_00"]
    selection = select_exposures(by_name(obs, OB1), exposure_time=860.0)
    assert kept(selection) == [f"{OB1}/{n}" for n in ("180431-242316_0860_000_00", "180431-242315_0860_090_00",
                                                      "180433-242316_0860_180_00", "180431-242316_0860_000_01",
                                                      "180600-240000_0120_000_00", "180431-243316_0860_000_00")]
    assert "drop WFM-NGC6530-tile-1/180431-242316_0005_000_00 (OBJECT): EXPTIME 5.0 s, not " \
           "global.using_specific_exposure_time = 860" in selection.describe()
    assert kept(select_exposures(ob5, exposure_time=False)) == kept(select_exposures(ob5))


@pytest.mark.parametrize("value", [True, 0, -5, 1.5, "860", float("nan"), float("inf")])
def test_specific_exposure_time_must_be_whole_seconds(obs, value):
    with pytest.raises(GroupingError, match="global.using_specific_exposure_time = .*whole number of seconds"):
        select_exposures(obs, exposure_time=value)


def test_specific_exposure_time_without_match_lists_the_times(obs):
    with pytest.raises(GroupingError, match=r"= 999 matches no OBJECT exposure of OB\(s\) Field_C_equator: "
                                            r"their exposure times are \[5, 120\] s"):
        select_exposures(by_name(obs, OB5), exposure_time=999)


def test_exp_list_keeps_named_exposures_and_skies_and_restricts_pointings(obs):
    ob1 = by_name(obs, OB1)
    selection = select_exposures(ob1, exp_list=["180431-242315_0860_090_00", "180431-242316_0860_000_01"])
    assert kept(selection) == [f"{OB1}/180431-242315_0860_090_00", f"{OB1}/180431-242316_0860_000_01",
                               f"{OB1}/180600-240000_0120_000_00"]
    assert pointing_map(selection.restrict(ob1.pointings)) == {
        "180431-242316_0860": [f"{OB1}/180431-242315_0860_090_00", f"{OB1}/180431-242316_0860_000_01"]}
    both = select_exposures([ob1, by_name(obs, OB2)], exp_list=[f"{OB2}/180431-242316_0860_000_00"])
    assert [e.qualified_name for e in both.exposures if e.tag == "OBJECT"] == [f"{OB2}/180431-242316_0860_000_00"]


def test_exp_list_errors_list_the_valid_names(obs):
    ob1, ob2 = by_name(obs, OB1), by_name(obs, OB2)
    with pytest.raises(GroupingError) as err:
        select_exposures(ob1, exp_list=["180431-242316_0860_000_05", "tile-1"])
    assert str(err.value) == (
        "global.exp_list (MUSEreduce dither_collect.user_list): '180431-242316_0860_000_05' is unknown; "
        "'tile-1' is unknown (not RADEC_EXPTIME_ROTANGLE_COUNTER). Valid OBJECT exposures: "
        "180431-242316_0005_000_00, 180431-242316_0860_000_00, 180431-242315_0860_090_00, 180433-242316_0860_180_00, "
        "180431-242316_0860_000_01, 180431-242316_0005_090_00, 180431-243316_0860_000_00")
    with pytest.raises(GroupingError, match=f"'180431-242316_0860_000_00' is in several OBs: write one of "
                                            f"{OB1}/180431-242316_0860_000_00, {OB2}/180431-242316_0860_000_00"):
        select_exposures([ob1, ob2], exp_list=["180431-242316_0860_000_00"])
    with pytest.raises(GroupingError, match="'180600-240000_0120_000_00' is a SKY exposure"):
        select_exposures(ob1, exp_list=["180600-240000_0120_000_00"])
    with pytest.raises(GroupingError, match="'180431-242316_0005_000_00' has EXPTIME 5.0 s, excluded by "
                                            "global.using_specific_exposure_time = 860"):
        select_exposures(ob1, exp_list=["180431-242316_0005_000_00"], exposure_time=860)
