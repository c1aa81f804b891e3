"""The nightly DAG's decisions without Airflow: night boundaries, complete templates, fingerprints, run IDs.

The end-to-end path (scheduler, backfill, real reductions) is tests/test_nightly.py.
"""
from __future__ import annotations

import os
from datetime import datetime, UTC

from astropy.time import Time

from muse_operators.grouping import group_science
from muse_operators.headers import RawFrame
from muse_operators.nightly import (night_of, night_of_mjd, night_start_mjd, reduction_fingerprint, run_id_for,
                                    template_gaps)


def test_the_observing_night_runs_from_noon_to_noon_utc() -> None:
    assert night_of(datetime(2024, 3, 10, 23, 0, tzinfo=UTC)) == "2024-03-10"
    assert night_of(datetime(2024, 3, 11, 11, 59, 59, tzinfo=UTC)) == "2024-03-10"
    assert night_of(datetime(2024, 3, 11, 12, 0, tzinfo=UTC)) == "2024-03-11"  # the afternoon calibs
    assert night_of_mjd(night_start_mjd("2024-03-10")) == "2024-03-10"
    assert night_of_mjd(night_start_mjd("2024-03-10") - 1e-6) == "2024-03-09"
    assert Time(night_start_mjd("2024-03-10"), format="mjd").isot.startswith("2024-03-10T12:00:00")


def _object(path: str, mjd: float, expno: int, nexp: int) -> RawFrame:
    return RawFrame(path=path, instrument="MUSE", dpr_catg="SCIENCE", dpr_type="OBJECT", dpr_tech="IFU",
                    mjd_obs=mjd, date_obs=Time(mjd, format="mjd").isot, exptime=600.0, ra=10.0, dec=-25.0,
                    ins_mode="WFM-NOAO-N", posang=0.0, obs_name="NGC_OB", obs_id=42, prog_id="60.A-9100(A)",
                    targ_name="NGC", tpl_start="2024-03-11T01:00:00", tpl_nexp=nexp, tpl_expno=expno,
                    read_curname="SCI1.0", ifus=[1])


def test_an_ob_is_incomplete_until_every_announced_exposure_has_landed() -> None:
    frames = [_object("/raw/a.fits", 60380.04, 1, 3), _object("/raw/b.fits", 60380.05, 2, 3)]
    (ob,) = group_science(frames)
    assert template_gaps(ob, frames) == ["template 2024-03-11T01:00:00: exposure(s) 3 of 3 not arrived yet"]
    frames.append(_object("/raw/c.fits", 60380.06, 3, 3))
    (ob,) = group_science(frames)
    assert template_gaps(ob, frames) == []


def test_the_fingerprint_follows_inputs_product_settings_and_code(tmp_path) -> None:
    raw = tmp_path / "a.fits"
    raw.write_bytes(b"x" * 2880)
    config = {"global": {"OB_list": ["A"], "n_CPU": 4}, "sci_post": {"skymethod": "model"}}
    base = reduction_fingerprint([str(raw)], config, [1], ["image-1"])
    # which OB a run selects and how many threads it uses do not change an OB's products
    assert reduction_fingerprint([str(raw)], {**config, "global": {"OB_list": ["B"], "n_CPU": 1}}, [1],
                                 ["image-1"]) == base
    assert reduction_fingerprint([str(raw)], {**config, "sci_post": {"skymethod": "none"}}, [1], ["image-1"]) != base
    assert reduction_fingerprint([str(raw)], config, [1, 2], ["image-1"]) != base
    assert reduction_fingerprint([str(raw)], config, [1], ["image-2"]) != base
    os.utime(raw, ns=(1, 1))  # a re-delivered file
    assert reduction_fingerprint([str(raw)], config, [1], ["image-1"]) != base


def test_run_ids_use_airflows_alphabet() -> None:
    assert run_id_for("2024-03-10", "NGC 300/field#2", "abc123") == "nightly__2024-03-10__NGC-300-field-2__abc123"
