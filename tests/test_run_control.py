"""What a user controls about a run, without containers: which OBs, IFU fan-out, stage switches, the run
directory, reuse of finished steps, hand-edited SOFs and the clean-up (the real runs: test_dags.py and
test_science_chain.py)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from astropy.io import fits

from muse_operators.cleanup import cleanup_targets, remove
from muse_operators.config import load_config
from muse_operators.errors import SofError
from muse_operators.plan import ReductionPlan, unfinished_steps
from muse_operators.planner import plan_reduction
from muse_operators.run_dir import RunDirectoryError, run_directory, run_id
from muse_operators.sof import read_sof
from muse_operators.step_record import fingerprint, read_record, recorded, reusable, write_record

from .header_pool import OWN_CALIBRATIONS


def _plan(frames, tmp_path, **sections) -> ReductionPlan:
    config = json.loads(json.dumps(OWN_CALIBRATIONS))
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    return plan_reduction(tmp_path / "raw", tmp_path / "out", config, frames=frames)


# --- which OBs, how IFUs fan out ------------------------------------------------------------------

def test_ob_list_alone_restricts_the_obs_reduced(header_night, tmp_path):
    plan = _plan(header_night, tmp_path, **{"global": {**OWN_CALIBRATIONS["global"], "OB_list": ["NGC1_b"]}})
    assert {s.name.split(".")[1] for s in plan.by_stage("scipost")} == {"NGC1_b"}
    assert any("NGC1_a not in global.OB_list" in line for line in plan.report)


def test_merged_ifu_tasks_fold_each_per_ifu_group_into_one_call(header_night, tmp_path):
    per_ifu = _plan(header_night, tmp_path)
    merged = _plan(header_night, tmp_path, **{"global": {**OWN_CALIBRATIONS["global"], "ifu_tasks": "merged"}})
    assert len(per_ifu.by_stage("bias")) == 2 and [s.name for s in merged.by_stage("bias")] == ["bias.bias"]
    bias = merged.step("bias.bias")
    assert bias.parameters["nifu"] == -1 and bias.parameters["merge"] is True and bias.ifu is None
    assert bias.output_dir.endswith("calibrations/bias/bias")
    assert len(merged.by_stage("scibasic")) == len(per_ifu.by_stage("scibasic")) // 2
    scipost = merged.step("scipost.NGC1_a.100000-300000_0600_090_00")
    assert [i.step for i in scipost.inputs if i.tag == "PIXTABLE_OBJECT"] == [
        "scibasic.NGC1_a.100000-300000_0600_090_00"]  # one merged step hands on every IFU's pixel table
    assert [i.step for i in scipost.inputs if i.tag == "LSF_PROFILE"] == ["lsf.arc"]
    assert {d for d in merged.step("twilight.twi").depends_on} == {"bias.bias", "flat.flat", "wavecal.arc"}
    merged.check()  # every reference points to a step that exists, in an earlier stage
    # these frames have IFUs 1 and 2 only: muse_flat --nifu=-1 would stop at IFU 3 (measured), so say so now
    assert any(e.startswith("flat.flat: global.ifu_tasks = merged") and "per_ifu" in e for e in merged.errors)
    assert not any(e.startswith("bias.") for e in merged.errors), "muse_bias skips dead IFUs (measured)"


# --- the execute / create_sof / n_CPU switches ----------------------------------------------------

def test_switched_off_stages_stay_planned_and_are_not_counted_as_failures(header_night, tmp_path):
    plan = _plan(header_night, tmp_path, calibration={"execute": False}, sci_post={"execute": False},
                 sci_basic={"execute_std": False}, exp_align={"execute": False},
                 **{"global": {**OWN_CALIBRATIONS["global"], "n_CPU": 3}})
    assert plan.by_stage("bias") and not any(s.execute for s in plan.by_stage("bias"))
    assert plan.by_stage("scipost") and not any(s.execute for s in plan.by_stage("scipost"))
    std = [s for s in plan.by_stage("scibasic") if any(i.tag == "STD" for i in s.inputs)]
    assert std and not any(s.execute for s in std)
    assert all(s.execute for s in plan.by_stage("scibasic") if s not in std)
    assert not plan.by_stage("exp_align") and plan.by_stage("exp_combine"), "exp_combine runs without offsets"
    assert {s.threads for s in plan.steps if not s.recipe.startswith("python:")} == {3}
    kwargs = plan.by_stage("bias")[0].operator_kwargs()
    assert kwargs["run_recipe"] is False and kwargs["omp_num_threads"] == 3 and kwargs["use_existing_sof"] is False
    assert any("switched off by the config" in line for line in plan.report)
    # nothing ran: only the steps that were meant to run count as unfinished
    unfinished = unfinished_steps(plan, [])
    assert "bias.bias.01" not in unfinished and any(name.startswith("create_sky.") for name in unfinished)


def test_create_sof_false_marks_only_its_sections_steps(header_night, tmp_path):
    plan = _plan(header_night, tmp_path, sci_basic={"create_sof": False})
    assert {s.create_sof for s in plan.by_stage("scibasic")} == {False}
    assert {s.create_sof for s in plan.by_stage("bias")} == {True}


def test_a_hand_edited_sof_is_read_with_clear_errors(tmp_path):
    frame = tmp_path / "bias1.fits"
    frame.write_bytes(b"")
    sof = tmp_path / "muse_bias.sof"
    sof.write_text(f"# edited\n\n{frame} BIAS\n")
    assert [(e.path, e.tag) for e in read_sof(sof)] == [(str(frame), "BIAS")]
    sof.write_text(f"{frame} BIAS\n{tmp_path}/gone.fits BIAS\n")
    with pytest.raises(SofError, match=r"muse_bias.sof, line 2: .*gone.fits \(BIAS\) does not exist"):
        read_sof(sof)
    with pytest.raises(SofError, match="set create_sof to true"):
        read_sof(tmp_path / "missing.sof")


# --- one directory per run config ----------------------------------------------------------------

def test_each_config_gets_its_own_run_directory(tmp_path):
    base = load_config(None)
    off = load_config({"calibration": {"execute": False}, "cleanup": {"execute": True}, "global": {"n_CPU": 2}})
    other = load_config({"sky": {"method": "simple"}})
    assert run_id(base) == run_id(off), "run switches must find the products of the run they switch off"
    assert run_id(base) != run_id(other) and run_id(base) != run_id(base, [1, 2])
    first = run_directory(tmp_path, base)
    assert first == tmp_path / f"run-{run_id(base)}" and (first / "run-config.json").is_file()
    assert run_directory(tmp_path, off) == first
    assert run_directory(tmp_path, other) != first
    named = run_directory(tmp_path, base, run_name="night-2024-01-01")
    assert named.name == "night-2024-01-01"
    with pytest.raises(RunDirectoryError, match=r"sky\.method: 'model' there, 'simple' now"):
        run_directory(tmp_path, other, run_name="night-2024-01-01")
    with pytest.raises(RunDirectoryError, match="run_name '../x'"):
        run_directory(tmp_path, base, run_name="../x")


# --- reuse of finished steps ---------------------------------------------------------------------

def _product(directory: Path, catg: str, name: str) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    header = fits.Header()
    header["HIERARCH ESO PRO CATG"] = catg
    path = directory / name
    fits.PrimaryHDU(header=header).writeto(path)
    return str(path)


def test_a_finished_step_is_reused_only_while_inputs_parameters_image_and_products_are_the_same(tmp_path):
    raw = tmp_path / "bias1.fits"
    raw.write_bytes(b"x" * 2880)
    sof = [[str(raw), "BIAS"]]
    out = tmp_path / "ifu01"
    products = {"MASTER_BIAS": [_product(out, "MASTER_BIAS", "MASTER_BIAS-01.fits")]}
    made = fingerprint("muse_bias", sof, {"nifu": 1}, "sha256:aaa")
    write_record(out, made, "muse_bias", products)
    assert reusable(out, made) == products and read_record(out).recipe == "muse_bias"
    assert fingerprint("muse_bias", sof, {"nifu": 1}, "sha256:bbb") != made, "another image"
    assert fingerprint("muse_bias", sof, {"nifu": 2}, "sha256:aaa") != made, "other parameters"
    os.utime(raw, ns=(1, 1))
    assert fingerprint("muse_bias", sof, {"nifu": 1}, "sha256:aaa") != made, "a changed input file"
    with open(products["MASTER_BIAS"][0], "ab") as handle:  # a product changed behind the record's back
        handle.write(b"\0" * 2880)
    assert reusable(out, made) is None and recorded(out) is None


# --- the clean-up --------------------------------------------------------------------------------

def test_cleanup_removes_only_intermediates_inside_the_run_directory(header_night, tmp_path):
    plan = _plan(header_night, tmp_path, cleanup={"execute": True, "include_calibrations": True})
    outputs = []
    for step in plan.steps:
        catg = {"scibasic": "PIXTABLE_OBJECT", "scipost": "PIXTABLE_REDUCED"}.get(step.stage, step.expected_products[0])
        made = {catg: [_product(Path(step.output_dir), catg, f"{catg}.fits")]}
        if step.stage == "scipost":
            made["DATACUBE_FINAL"] = [_product(Path(step.output_dir), "DATACUBE_FINAL", "DATACUBE_FINAL.fits")]
        outputs.append(made)
    targets = cleanup_targets(plan, outputs, load_config(plan.config))
    root = Path(plan.output_dir)
    assert root / "calibrations" in targets and all(root in t.parents for t in targets)
    assert not [t for t in targets if t.name == "DATACUBE_FINAL.fits"]
    count, freed = remove(targets)
    assert count == len(targets) and freed > 0
    assert not (root / "calibrations").exists()
    assert list(root.glob("reduced/*/*/scipost/DATACUBE_FINAL.fits"))
    assert not list(root.glob("reduced/NGC1_*/*/scibasic/*/*.fits"))
    assert list(root.glob("reduced/std/*/scibasic/*/*.fits")), "the standard star is kept without include_std"
    plain = _plan(header_night, tmp_path)
    assert cleanup_targets(plain, outputs, load_config(plain.config)) == []
