"""The whole reduction plan for realistic header pools: which steps, wired to which inputs, and errors."""
from __future__ import annotations

from muse_operators.plan import ReductionPlan
from muse_operators.planner import plan_reduction

from .header_pool import NOON, OWN_CALIBRATIONS, calib_template, raw

def test_full_night_plan_with_own_calibrations(header_night, tmp_path):
    plan = plan_reduction(tmp_path / "raw", tmp_path / "out", OWN_CALIBRATIONS, frames=header_night)
    assert plan.errors == []
    counts = {stage: len(plan.by_stage(stage)) for stage in
              ("bias", "flat", "wavecal", "lsf", "twilight", "scibasic", "standard", "create_sky", "scipost",
               "exp_align", "exp_combine")}
    # 4 objects + 1 sky + 1 std, each on 2 IFUs; one external sky serves every object (sky_field auto);
    # only OB NGC1_a has a pointing with two exposures (NGC1_b: one 600 s, one 900 s exposure).
    assert counts == {"bias": 2, "flat": 2, "wavecal": 2, "lsf": 2, "twilight": 1, "scibasic": 12, "standard": 1,
                      "create_sky": 1, "scipost": 4, "exp_align": 1, "exp_combine": 1}
    # NN counts exposures with the same RADEC_EXPTIME *and* rotation, in time order (MUSEreduce's rule).
    sci2 = plan.step("scipost.NGC1_a.100000-300000_0600_090_00")
    tags = [i.tag for i in sci2.inputs]
    assert tags.count("PIXTABLE_OBJECT") == 2 and tags.count("LSF_PROFILE") == 2
    assert {i.step for i in sci2.inputs if i.tag in ("SKY_LINES", "SKY_CONTINUUM")} == {
        "create_sky.NGC1_a.100048-300000_0300_000_00"}
    assert {i.step for i in sci2.inputs if i.tag == "STD_RESPONSE"} == {"standard.std"}
    scibasic = plan.step("scibasic.NGC1_a.100000-300000_0600_000_00.01")
    assert {i.tag: (i.path or i.step) for i in scibasic.inputs} == {
        "OBJECT": "/raw/sci1.fits", "ILLUM": "/raw/illum.fits", "MASTER_BIAS": "bias.bias.01",
        "MASTER_FLAT": "flat.flat.01", "TRACE_TABLE": "flat.flat.01", "WAVECAL_TABLE": "wavecal.arc.01",
        "TWILIGHT_CUBE": "twilight.twi", "GEOMETRY_TABLE": "/raw/static_geometry_table.fits"}
    assert scibasic.parameters["nifu"] == 1 and scibasic.parameters["skyreject"] == "15.,15.,1"
    assert scibasic.output_dir.endswith("reduced/NGC1_a/100000-300000_0600_000_00/scibasic/ifu01")
    # the sky flats' own bias/flat/arc chain is the night's (nearest templates)
    assert {d for d in plan.step("twilight.twi").depends_on} == {
        "bias.bias.01", "bias.bias.02", "flat.flat.01", "flat.flat.02", "wavecal.arc.01", "wavecal.arc.02"}
    combine = plan.step("exp_combine.100000-300000_0600")
    assert [i.tag for i in combine.inputs].count("PIXTABLE_REDUCED") == 2
    assert any(r.startswith("pointing 100000-300000_0900: 1 exposure(s); the scipost DATACUBE_FINAL")
               for r in plan.report)
    assert any("STD" in r and "outside the OCA window" in r for r in plan.report)
    assert ReductionPlan.from_json(plan.to_json()).to_json() == plan.to_json()


def test_two_obs_dithered_into_one_pointing(header_night, tmp_path):
    config = {"global": {"using_ESO_Calibration": False, "dither_multiple_OBs": True,
                         "OB_list": ["NGC1_a", "NGC1_b"]}}
    plan = plan_reduction(tmp_path / "raw", tmp_path / "out", config, frames=header_night)
    combine = plan.step("exp_combine.100000-300000_0600")
    assert sorted(i.step for i in combine.inputs if i.tag == "PIXTABLE_REDUCED") == [
        "scipost.NGC1_a.100000-300000_0600_000_00", "scipost.NGC1_a.100000-300000_0600_090_00",
        "scipost.NGC1_b.100000-300000_0600_180_00"]
    assert combine.output_dir.endswith("reduced/100000-300000_0600/exp_combine")


def test_exposure_time_selection_and_object_as_sky(header_night, tmp_path):
    config = {"global": {"using_ESO_Calibration": False, "using_specific_exposure_time": 900},
              "sky": {"sky_field": "object"}}
    plan = plan_reduction(tmp_path / "raw", tmp_path / "out", config, frames=header_night)
    assert [s.name for s in plan.by_stage("scipost")] == ["scipost.NGC1_b.100000-300000_0900_000_00"]
    assert [s.name for s in plan.by_stage("create_sky")] == ["create_sky.NGC1_b.100000-300000_0900_000_00"]
    sky = plan.by_stage("create_sky")[0]
    assert {(i.tag, i.catg) for i in sky.inputs if i.tag == "PIXTABLE_SKY"} == {("PIXTABLE_SKY", "PIXTABLE_OBJECT")}


def test_errors_name_what_is_missing_and_the_setting(header_night, tmp_path):
    eso = plan_reduction(tmp_path / "raw", tmp_path / "out", {}, frames=header_night)
    assert any("global.using_ESO_Calibration is true but the pool has no ESO master" in e for e in eso.errors)
    no_flat = [f for f in header_night if not f.path.startswith("/raw/flat")]
    plan = plan_reduction(tmp_path / "raw", tmp_path / "out", OWN_CALIBRATIONS, frames=no_flat)
    assert any("no FLAT with matching INS.MODE and readout (required)" in e for e in plan.errors)
    no_statics = [f for f in header_night if not f.pro_catg]
    plan = plan_reduction(tmp_path / "raw", tmp_path / "out", OWN_CALIBRATIONS, frames=no_statics)
    assert any("static calibration LINE_CATALOG not found" in e for e in plan.errors)


def test_dark_and_mode_specific_statics(header_night, tmp_path):
    header_night += calib_template("dark", "DARK", NOON + 0.1)
    header_night += [raw("static_geometry_table_nfm", "", "", 57000.0, nexp=1, pro="GEOMETRY_TABLE"),
              raw("nfm_sci", "SCIENCE", "OBJECT", NOON + 0.6, ob="NFM", obs_id=7, mode="NFM-AO-N")]
    header_night += [raw(f"flat_nfm{i}", "CALIB", "FLAT,LAMP", NOON + 0.3 + i * 1e-3, tpl="flat_nfm", mode="NFM-AO-N")
              for i in range(3)]
    header_night += [raw(f"arc_nfm{i}", "CALIB", "WAVE", NOON + 0.31 + i * 1e-3, tpl="arc_nfm", mode="NFM-AO-N", nexp=9)
              for i in range(9)]
    config = {"global": {"using_ESO_Calibration": False}, "calibration": {"dark": True}}
    plan = plan_reduction(tmp_path / "raw", tmp_path / "out", config, frames=header_night)
    assert [s.name for s in plan.by_stage("dark")] == ["dark.dark.01", "dark.dark.02"]
    flat = plan.step("flat.flat.01")
    assert ("MASTER_DARK", "dark.dark.01") in {(i.tag, i.step) for i in flat.inputs}
    nfm = plan.step("scibasic.NFM.100000-300000_0600_000_00.01")
    assert {i.path for i in nfm.inputs if i.tag == "GEOMETRY_TABLE"} == {"/raw/static_geometry_table_nfm.fits"}
    wfm = plan.step("scibasic.NGC1_a.100000-300000_0600_000_00.01")
    assert {i.path for i in wfm.inputs if i.tag == "GEOMETRY_TABLE"} == {"/raw/static_geometry_table.fits"}
    assert "MASTER_DARK" in {i.tag for i in wfm.inputs}


def test_stage_inputs_resolve_from_outputs_and_block_what_depends_on_a_failure(header_night, tmp_path):
    from muse_operators.plan import stage_steps

    plan = plan_reduction(tmp_path / "raw", tmp_path / "out", OWN_CALIBRATIONS, frames=header_night)
    bias = {s.ifu: s for s in plan.by_stage("bias")}
    # IFU 1's bias finished, IFU 2's failed (no XCom); outputs arrive in any order
    outputs = [None, {"MASTER_BIAS": [f"{bias[1].output_dir}/MASTER_BIAS-01.fits"]}]
    runnable, blocked = stage_steps(plan, "flat", outputs)
    assert [k["parameters"]["nifu"] for k in runnable] == [1]
    assert runnable[0]["sof"][-1] == [f"{bias[1].output_dir}/MASTER_BIAS-01.fits", "MASTER_BIAS"]
    assert [k["sof"][0][1] for k in runnable] == ["FLAT"]
    assert blocked == ["flat.flat.02: not run, bias.bias.02 did not finish"]
    runnable, blocked = stage_steps(plan, "bias", [])
    assert len(runnable) == 2 and blocked == []


def test_exposures_without_ifu_data_make_no_steps(header_night, tmp_path):
    for frame in header_night:
        if frame.path.endswith("sci4.fits"):
            frame.ifus = []
    plan = plan_reduction(tmp_path / "raw", tmp_path / "out", OWN_CALIBRATIONS, frames=header_night)
    assert "scipost.NGC1_b.100000-300000_0900_000_00" not in {s.name for s in plan.steps}
    assert any("no IFU with data in /raw/sci4.fits" in e for e in plan.errors)


def test_autocalib_adds_the_frames_it_needs(header_night, tmp_path):
    deep = {"global": {"using_ESO_Calibration": False}, "sci_post": {"autocalib": "deepfield"}}
    plan = plan_reduction(tmp_path / "raw", tmp_path / "out", deep, frames=header_night)
    scipost = plan.step("scipost.NGC1_a.100000-300000_0600_000_00")
    assert scipost.parameters["autocalib"] == "deepfield"
    assert ("SKY_MASK", "create_sky.NGC1_a.100048-300000_0300_000_00") in {(i.tag, i.step) for i in scipost.inputs}
    user = {"global": {"using_ESO_Calibration": False}, "sci_post": {"autocalib": "user"}}
    plan = plan_reduction(tmp_path / "raw", tmp_path / "out", user, frames=header_night)
    assert any("static calibration AUTOCAL_FACTORS not found" in e for e in plan.errors)
    none = plan_reduction(tmp_path / "raw", tmp_path / "out", OWN_CALIBRATIONS, frames=header_night)
    assert "SKY_MASK" not in {i.tag for i in none.step("scipost.NGC1_a.100000-300000_0600_000_00").inputs}


def test_modified_sky_adds_zero_refit_and_molecular_steps(header_night, tmp_path):
    config = {"global": {"using_ESO_Calibration": False}, "sky": {"modified": True}}
    plan = plan_reduction(tmp_path / "raw", tmp_path / "out", config, frames=header_night)
    label = "NGC1_a.100048-300000_0300_000_00"
    zero, refit = plan.step(f"sky_zero.{label}"), plan.step(f"sky_refit.{label}")
    lines = plan.step(f"sky_lines.{label}")
    assert zero.recipe == "python:zero_sky_continuum" and zero.depends_on == [f"create_sky.{label}"]
    assert refit.recipe == "muse_create_sky" and ("SKY_CONTINUUM", zero.name) in {(i.tag, i.step) for i in refit.inputs}
    assert lines.recipe == "python:keep_molecular_sky_lines" and lines.depends_on == [refit.name]
    scipost = plan.step("scipost.NGC1_a.100000-300000_0600_000_00")
    assert {(i.tag, i.step) for i in scipost.inputs if i.tag.startswith("SKY_")} == {
        ("SKY_LINES", lines.name), ("SKY_CONTINUUM", zero.name)}
    assert scipost.parameters["skymethod"] == "subtract-model"
    plan.check()
