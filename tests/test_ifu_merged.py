"""``global.ifu_tasks = merged`` through muse_reduce with the real recipes (the per-IFU chain:
test_science_chain.py). The synthetic frames have 2 of 24 IFUs with data: muse_bias --nifu=-1 --merge
handles dead IFUs, the later recipes do not (the plan refuses them: test_run_control.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from astropy.io import fits

from muse_operators.products import categorise
from muse_operators.synthetic.raw_frames import write_bias_set

pytestmark = [pytest.mark.container, pytest.mark.airflow]


def test_merged_bias_makes_one_master_with_every_ifu(run_dag, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir(mode=0o755)
    write_bias_set(raw, [1, 2], count=3, seed=8)
    out = tmp_path / "reduced"
    result = run_dag("muse_reduce", {"raw_dir": str(raw), "output_dir": str(out), "ifus": None,
                                     "config": {"global": {"ifu_tasks": "merged"}}})
    assert result.returncode == 0, result.stdout[-8000:]
    plan = json.loads(next(out.glob("run-*/plan.json")).read_text())
    assert [(s["name"], s["parameters"]["nifu"], s["parameters"]["merge"]) for s in plan["steps"]] == [
        ("bias.2023-12-22T12-00-00", -1, True)]
    masters = categorise(Path(plan["steps"][0]["output_dir"]).glob("*.fits"))["MASTER_BIAS"]
    assert len(masters) == 1
    with fits.open(masters[0]) as hdul:
        names = {hdu.name.split(".")[0] for hdu in hdul[1:]}
    assert {"CHAN01", "CHAN02"} <= names, sorted(names)
