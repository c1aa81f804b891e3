"""Synthetic raw frames (layout, headers, determinism) and the plan made from them."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from muse_operators.classify import classify
from muse_operators.headers import RawFrame, read_frame, scan
from muse_operators.planner import plan_reduction
from muse_operators.synthetic.detector import RAW_SHAPE, ReadoutModel, overscan_levels, read_out, trim
from muse_operators.synthetic.raw_frames import write_bias_set


@pytest.fixture(scope="module")
def bias_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("bias")
    write_bias_set(directory, [1, 3], count=3, seed=5)
    return directory


def test_raw_frames_have_muse_archive_names_layout_and_dead_ifus(bias_dir):
    paths = sorted(bias_dir.glob("*.fits"))
    assert [p.name for p in paths] == ["MUSE.2023-12-22T12:00:00.000.fits", "MUSE.2023-12-22T12:00:40.000.fits",
                                       "MUSE.2023-12-22T12:01:20.000.fits"]
    with fits.open(paths[0]) as hdul:
        assert len(hdul) == 25
        assert hdul["CHAN01"].data.shape == RAW_SHAPE == (4240, 4224)
        assert hdul["CHAN01"].data.dtype.kind in "ui"
        assert hdul["CHAN02"].header["HIERARCH ESO DET CHIP LIVE"] is False and hdul["CHAN02"].data is None
        primary = hdul[0].header
        assert primary["ARCFILE"] == paths[0].name
        dpr = (primary["HIERARCH ESO DPR CATG"], primary["HIERARCH ESO DPR TYPE"], primary["HIERARCH ESO DPR TECH"])
        assert dpr == (
            "CALIB", "BIAS", "IFU")
        assert primary["HIERARCH ESO TPL NEXP"] == 3
        assert hdul["CHAN03"].header["HIERARCH ESO DET OUT3 X"] == 4096
    assert read_frame(paths[0], with_ifus=True).ifus == [1, 3]


def test_generation_is_deterministic_per_seed(tmp_path):
    first = write_bias_set(tmp_path / "a", [1], count=1, seed=3)[0]
    again = write_bias_set(tmp_path / "b", [1], count=1, seed=3)[0]
    other = write_bias_set(tmp_path / "c", [1], count=1, seed=4)[0]
    data = [fits.getdata(p, "CHAN01") for p in (first, again, other)]
    assert np.array_equal(data[0], data[1])
    assert not np.array_equal(data[0], data[2])


def test_readout_levels_and_noise_follow_the_model():
    model = ReadoutModel()
    raw = read_out(None, np.random.default_rng(0), model)
    levels = overscan_levels(raw)
    for port in range(1, 5):
        assert levels[port] == pytest.approx(model.bias_adu[port - 1], abs=0.6)
    assert trim(raw).std() == pytest.approx(np.mean(model.ron_adu) + 3.2, abs=3.5)  # RON + quadrant offsets


def _frame(**keywords) -> RawFrame:
    base = dict(path="/x.fits", instrument="MUSE", dpr_catg="CALIB", dpr_tech="IFU", tpl_nexp=3)
    base.update(keywords)
    return RawFrame(**base)


@pytest.mark.parametrize(
    ("keywords", "tag"),
    [
        ({"dpr_type": "BIAS"}, "BIAS"),
        ({"dpr_type": "FLAT,LAMP"}, "FLAT"),
        ({"dpr_type": "FLAT,LAMP,ILLUM", "tpl_nexp": 1}, "ILLUM"),
        ({"dpr_type": "FLAT,SKY"}, "SKYFLAT"),
        ({"dpr_type": "WAVE"}, "ARC"),
        ({"dpr_type": "WAVE,MASK"}, "MASK"),
        ({"dpr_type": "STD"}, "STD"),
        ({"dpr_catg": "SCIENCE", "dpr_type": "OBJECT"}, "OBJECT"),
        ({"dpr_catg": "SCIENCE", "dpr_type": "SKY"}, "SKY"),
        ({"pro_catg": "MASTER_BIAS", "dpr_tech": None}, "MASTER_BIAS"),
    ],
)
def test_classification_follows_the_oca_rules(keywords, tag):
    assert classify(_frame(**keywords)).tag == tag


def test_unclassified_frames_say_why():
    assert "TPL NEXP = 2" in classify(_frame(dpr_type="BIAS", tpl_nexp=2)).reason
    assert "not MUSE" in classify(_frame(instrument="FORS2", dpr_type="BIAS")).reason
    assert "no OCA rule" in classify(_frame(dpr_type="LAMP,SOMETHING")).reason


def test_plan_has_one_bias_step_per_ifu_and_is_json(bias_dir, tmp_path):
    (bias_dir.parent / "broken").mkdir(exist_ok=True)
    plan = plan_reduction(bias_dir, tmp_path / "out")
    steps = plan.by_recipe("muse_bias")
    assert [s.parameters for s in steps] == [{"nifu": 1}, {"nifu": 3}]
    assert all(len(s.inputs) == 3 and {i.tag for i in s.inputs} == {"BIAS"} for s in steps)
    assert steps[0].output_dir == str(tmp_path / "out/calibrations/bias/2023-12-22T12-00-00/ifu01")
    assert json.loads(plan.to_json())["steps"][1]["expected_products"] == ["MASTER_BIAS"]
    assert [s.name for s in type(plan).from_json(plan.to_json()).steps] == [s.name for s in plan.steps]
    assert [s.parameters for s in plan_reduction(bias_dir, tmp_path / "out", ifus=[3]).steps] == [{"nifu": 3}]


def test_unreadable_files_are_reported_by_name(tmp_path):
    (tmp_path / "MUSE.bad.fits").write_bytes(b"not a fits file")
    result = scan(tmp_path)
    assert result.frames == []
    assert result.unreadable[0][0].endswith("MUSE.bad.fits")
    with pytest.raises(NotADirectoryError, match="does not exist"):
        scan(tmp_path / "nope")
