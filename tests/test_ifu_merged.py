"""``global.ifu_tasks = merged``: the calibration chain as MUSEreduce ran it (``--nifu=-1 --merge``), through
muse_reduce with the real recipes (the per-IFU chain: test_science_chain.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from astropy.io import fits

from muse_operators.products import categorise
from muse_operators.synthetic.night import write_calibration_night

pytestmark = [pytest.mark.container, pytest.mark.airflow]


def test_merged_calibration_chain_makes_one_master_per_calibration(run_dag, tmp_path_factory):
    root = tmp_path_factory.mktemp("merged")
    root.chmod(0o755)
    files = write_calibration_night(root / "raw", ifus=[1, 2], seed=8)
    out = root / "reduced"
    result = run_dag("muse_reduce", {"raw_dir": str(files.raw_dir), "output_dir": str(out), "ifus": None,
                                     "config": {"global": {"using_ESO_Calibration": False, "ifu_tasks": "merged"}}},
                     timeout=2400)
    assert result.returncode == 0, result.stdout[-8000:]
    plan = json.loads(next(out.glob("run-*/plan.json")).read_text())
    by_stage: dict[str, list[dict]] = {}
    for step in plan["steps"]:
        by_stage.setdefault(step["stage"], []).append(step)
    assert {stage: len(steps) for stage, steps in by_stage.items()} == {
        "bias": 1, "flat": 1, "wavecal": 1, "lsf": 1, "twilight": 1}
    for stage in ("bias", "flat", "wavecal", "lsf"):
        step = by_stage[stage][0]
        assert step["parameters"]["nifu"] == -1 and step["parameters"]["merge"] is True
        products = categorise(Path(step["output_dir"]).glob("*.fits"))
        for catg in step["expected_products"]:
            assert len(products.get(catg, [])) == 1, f"{stage}: one merged {catg} expected, got {products.get(catg)}"
            with fits.open(products[catg][0]) as hdul:
                names = {hdu.name.split(".")[0] for hdu in hdul[1:]}
            assert {"CHAN01", "CHAN02"} <= names, f"{catg} lacks an IFU: {sorted(names)}"
    twilight = categorise(Path(by_stage["twilight"][0]["output_dir"]).glob("*.fits"))
    assert twilight.get("TWILIGHT_CUBE"), "muse_twilight must accept the merged masters"
