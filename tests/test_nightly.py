"""Scheduled nightly reductions and archival backfill (issue 7), with a real scheduler, real recipes.

A two-night synthetic archive (IFUs 1-2, not 1 alone: on a one-IFU field muse_standard's response comes
out empty, measured; each night: calibrations, a standard star and one OB of two exposures; night 0 belongs
to programme 60.A-9100(A), night 1 to 60.A-9101(A)) lands in a landing area, with the second exposure
of night 1's OB held back and without night 1's calibration frames (so both OBs are reduced with night
0's calibrations, which the second reduction must reuse, not redo).
Then, against a running scheduler:

1. ``airflow backfill create`` over both nights with ``programme=60.A-9100*``: night 0's OB is
   reduced (one muse_reduce run), night 1's OB is reported as not selected;
2. the nightly run of night 1 without filter reports its OB incomplete (and succeeds);
3. the held-back exposure arrives; the nightly run of night 2 (no data of its own, looking back two
   nights) triggers night 1's OB and skips night 0's (unchanged: its reduction exists);
4. both reductions finish with a combined cube, in one run directory with one set of calibrations;
   the raw files are untouched.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest
from astropy.io import fits
from astropy.wcs import WCS

from muse_operators.synthetic.night import write_night

from .airflow_services import AirflowServices
from .conftest import NARROW_CUBES, checksums

pytestmark = [pytest.mark.airflow, pytest.mark.container]

CONFIG = {"global": {"using_ESO_Calibration": False}, **NARROW_CUBES}  # cubes over 6000-7850 Å: conftest says why
NIGHT0, NIGHT1, NIGHT2 = "2023-12-22", "2023-12-23", "2023-12-24"  # data intervals start at 12:00 UTC
REDUCE_TIMEOUT = 2400  # s, two OBs' full chains on 2 cores


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("nightly")
    root.chmod(0o755)
    landing, held = root / "landing", root / "held-back"
    write_night(landing, [1, 2], obs=1, exposures=2, nights=2, seed=21, sky=False)
    manifest = json.loads((landing / "manifest.json").read_text())
    late = [e["file"] for e in manifest["exposures"] if e["kind"] == "OBJECT" and e["night"] == 1][-1]
    for names in manifest["nights"][1]["calibrations"].values():
        for name in names:
            (landing / name).unlink()
    held.mkdir()
    shutil.move(str(landing / late), held / late)
    output = root / "reduced"
    output.mkdir()
    output.chmod(0o777)  # the recipe containers' user writes here
    return {"landing": landing, "held": held / late, "output": output, "manifest": manifest,
            "raw_sums": checksums(sorted(p for p in landing.rglob("*.fits")) + [held / late])}


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory, archive: dict, esorex_image: str) -> Iterator[AirflowServices]:
    home = tmp_path_factory.mktemp("airflow_services")
    # recipe threads: MUSE_OMP_NUM_THREADS, conftest's share of the cores per xdist worker
    services = AirflowServices(home, {"MUSE_LANDING_DIR": str(archive["landing"]),
                                      "MUSE_NIGHTLY_OUTPUT_DIR": str(archive["output"]),
                                      "MUSE_HEADER_INDEX": str(home / "headers.sqlite")})
    services.start()
    try:
        services.wait_until_parsed(["muse_nightly", "muse_reduce"])
        services.cli("dags", "unpause", "muse_reduce")
        services.cli("dags", "unpause", "muse_nightly")
        yield services
    finally:
        services.stop()


def _night_conf(archive: dict, **extra) -> str:
    return json.dumps({"landing_dir": str(archive["landing"]), "output_dir": str(archive["output"]),
                       "config": CONFIG, "ifus": [1, 2], **extra})


def _report(archive: dict, night: str) -> dict[str, dict]:
    data = json.loads((archive["output"] / "nightly" / f"{night}.json").read_text())
    return {ob["ob"]: ob for ob in data["obs"]}


def _nightly_run(airflow: AirflowServices, night: str) -> tuple[str, dict]:
    runs = airflow.wait_for_runs("muse_nightly", lambda k, v: str(v["logical_date"]).startswith(night), 1, 300)
    ((run_id, run),) = runs.items()
    return run_id, run


def test_backfill_nightly_retry_and_skip(airflow: AirflowServices, archive: dict) -> None:
    # 1. backfill both nights, programme filter
    airflow.cli("backfill", "create", "--dag-id", "muse_nightly", "--from-date", f"{NIGHT0}T12:00:00+00:00",
                "--to-date", f"{NIGHT1}T12:00:00+00:00", "--dag-run-conf",
                _night_conf(archive, programme="60.A-9100*", lookback_nights=0),
                nothing_written=lambda: not airflow.query("SELECT id FROM backfill WHERE dag_id = 'muse_nightly'"))
    for night in (NIGHT0, NIGHT1):
        run_id, run = _nightly_run(airflow, night)
        assert run["state"] == "success", airflow.task_states("muse_nightly", run_id)
        assert run["run_type"] == "backfill"
    night0 = _report(archive, NIGHT0)
    assert night0["SYN-N1A_OB1"]["status"] == "ready"
    first_run_id = night0["SYN-N1A_OB1"]["run_id"]
    assert first_run_id.startswith(f"nightly__{NIGHT0}__SYN-N1A_OB1__")
    night1 = _report(archive, NIGHT1)
    assert night1["SYN-N2A_OB1"]["status"] == "not-selected"
    assert "60.A-9101(A)" in night1["SYN-N2A_OB1"]["reasons"][0]
    assert set(airflow.runs("muse_reduce")) == {first_run_id}

    # 2. the nightly run of night 1, no filter: the OB lacks an exposure -> incomplete, reported, no failure
    airflow.cli("dags", "trigger", "muse_nightly", "--run-id", "manual-night1",
                "--conf", _night_conf(archive, night=NIGHT1, lookback_nights=0),
                nothing_written=lambda: "manual-night1" not in airflow.runs("muse_nightly"))
    run = airflow.wait_for_runs("muse_nightly", lambda k, v: k == "manual-night1", 1, 300)["manual-night1"]
    assert run["state"] == "success", airflow.task_states("muse_nightly", "manual-night1")
    night1 = _report(archive, NIGHT1)["SYN-N2A_OB1"]
    assert night1["status"] == "incomplete"
    assert any("exposure(s) 2 of 2 not arrived yet" in reason for reason in night1["reasons"]), night1
    assert set(airflow.runs("muse_reduce")) == {first_run_id}

    # 3. the exposure lands; the next night's run looks back, reduces night 1's OB, skips night 0's
    shutil.copy2(archive["held"], archive["landing"] / archive["held"].name)
    airflow.cli("dags", "trigger", "muse_nightly", "--run-id", "manual-night2",
                "--conf", _night_conf(archive, night=NIGHT2, lookback_nights=2),
                nothing_written=lambda: "manual-night2" not in airflow.runs("muse_nightly"))
    run = airflow.wait_for_runs("muse_nightly", lambda k, v: k == "manual-night2", 1, 300)["manual-night2"]
    assert run["state"] == "success"
    report = _report(archive, NIGHT2)
    assert report["SYN-N1A_OB1"]["run_id"] == first_run_id  # same inputs, config and image: same run
    second_run_id = report["SYN-N2A_OB1"]["run_id"]
    assert report["SYN-N2A_OB1"]["status"] == "ready" and second_run_id.startswith(f"nightly__{NIGHT1}__")
    states = {state for task, _, state in airflow.task_states("muse_nightly", "manual-night2") if task == "reduce_ob"}
    assert states == {"skipped", "success"}, airflow.task_states("muse_nightly", "manual-night2")

    # 4. both reductions finish with a cube each; exactly one muse_reduce run per OB; raw untouched
    reductions = airflow.wait_for_runs("muse_reduce", lambda k, v: True, 2, REDUCE_TIMEOUT)
    assert set(reductions) == {first_run_id, second_run_id}
    for run_id, run in reductions.items():
        failed = [t for t in airflow.task_states("muse_reduce", run_id) if t[2] not in ("success", "skipped")]
        assert run["state"] == "success", failed
        assert run["conf"]["config"]["global"]["OB_list"] == [run_id.split("__")[2]]
    cubes = sorted(archive["output"].glob("run-*/**/exp_combine/DATACUBE_FINAL*.fits"))
    assert {cube.parts[-4] for cube in cubes} >= {"SYN-N1A_OB1", "SYN-N2A_OB1"}, cubes
    for cube in cubes:
        with fits.open(cube) as hdul:
            assert WCS(hdul[1].header).has_celestial
    runs_dirs = {p.parent for p in archive["output"].glob("run-*/run-config.json")}
    assert len(runs_dirs) == 1  # per-OB runs of one config share one run directory
    run_dir = next(iter(runs_dirs))
    for stage in ("bias", "flat", "wavecal", "lsf", "twilight"):  # night 0's, reduced once for both OBs
        sets = sorted(p.name for p in run_dir.glob(f"calibrations/{stage}/*") if not p.name.startswith("."))
        assert len(sets) == 1, (stage, sets)
        for map_index in {m for t, m, _ in airflow.task_states("muse_reduce", first_run_id) if t == stage}:
            reused = [run_id for run_id in reductions if "reusing its products" in airflow.task_log(
                "muse_reduce", run_id, stage, map_index)]
            assert len(reused) == 1, f"{stage}[{map_index}]: reused by {reused}; it must run once and be reused once"
    assert checksums(sorted(p for p in archive["landing"].rglob("*.fits") if p.name != archive["held"].name)
                     + [archive["held"]]) == archive["raw_sums"]
