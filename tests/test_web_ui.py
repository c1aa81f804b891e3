"""The web UI as an astronomer uses it (issue 14): a real chromium on the real Airflow UI, real recipes.

Against a running api-server + scheduler + dag-processor (LocalExecutor, SQLite), one logged-in headless
chromium, in this order:

1. ``muse_reduce``'s trigger form: with nothing filled in, only *Run Parameters* is marked (raw_dir and
   output_dir are empty) and *Trigger* is disabled; after raw_dir, output_dir and the
   ``using_ESO_Calibration`` switch it is enabled, and the run reduces a pool of raw biases (IFUs 1-2)
   to a master bias per IFU, followed on its page in the UI (the biases keep the run short: the whole
   calibration chain runs in test_dags.py and test_science_chain.py, within the CI time limit);
2. the same form on a pool without ESO masters and the default ``using_ESO_Calibration: true``: the run
   fails once, in its ``plan`` task, with the message saying what to do; no other task fails;
3. ``muse_recipe``'s form: recipe, SOF pasted as JSON, output_dir: a master bias;
4. ``muse_nightly``'s *Backfill* option over the two nights of the synthetic archive, with only the dates,
   the directories and the config filled: one successful backfill run per night, a night report each, and
   the ready OB's muse_reduce run requested (muse_reduce is paused here: test_nightly.py reduces such runs).

Every test that fails leaves a screenshot and the page's HTML under ``test-artefacts/`` (tests/browser.py).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from astropy.io import fits

from muse_operators.synthetic.night import write_night
from muse_operators.synthetic.raw_frames import write_bias_set

from .airflow_services import AirflowServices, wait_for
from .browser import Browser
from .conftest import checksums

pytestmark = [pytest.mark.airflow, pytest.mark.container, pytest.mark.browser]

NIGHT0, NIGHT1 = "2023-12-22", "2023-12-23"  # the archive's nights; their data intervals start at 12:00 UTC
BIAS_IFUS = (1, 2)
REDUCE_TIMEOUT = 600  # s; two muse_bias calls


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Raw biases (IFUs 1-2), a two-night archive (IFU 1, one OB of one exposure a night), outputs."""
    root = tmp_path_factory.mktemp("web_ui")
    root.chmod(0o755)
    biases, archive = root / "biases", root / "archive"
    write_bias_set(biases, BIAS_IFUS, count=3, seed=14)
    write_night(archive, [1], obs=1, exposures=1, nights=2, seed=21, sky=False)
    outputs = {}
    for name in ("reduced", "recipe", "nightly", "nightly-default"):
        outputs[name] = root / name
        outputs[name].mkdir()
        outputs[name].chmod(0o777)  # the recipe containers' user writes here
    return {"biases": biases, "archive": archive, **outputs}


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory, data: dict[str, Path], esorex_image: str
            ) -> Iterator[AirflowServices]:
    home = tmp_path_factory.mktemp("airflow_ui")
    # the deployment's nightly defaults; the backfill test types other directories into the form
    services = AirflowServices(home, {"MUSE_HEADER_INDEX": str(home / "headers.sqlite"),
                                      "MUSE_LANDING_DIR": str(data["archive"]),
                                      "MUSE_NIGHTLY_OUTPUT_DIR": str(data["nightly-default"])})
    services.start()
    try:
        services.wait_until_parsed(["muse_reduce", "muse_recipe", "muse_nightly"])
        yield services
    finally:
        services.stop()


@pytest.fixture(scope="module")
def browser(airflow: AirflowServices) -> Iterator[Browser]:
    password_file = airflow.home / "simple_auth_manager_passwords.json.generated"
    password = json.loads(password_file.read_text())["admin"]
    session = Browser(f"http://localhost:{airflow.port}")
    try:
        session.log_in("admin", password)
        yield session
    finally:
        session.close()


@pytest.fixture(autouse=True)
def screenshot_on_failure(request: pytest.FixtureRequest, browser: Browser) -> Iterator[None]:
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(f"screenshot of the failed page: {browser.screenshot(request.node.name)}")


def _new_run(airflow: AirflowServices, dag_id: str, known: set[str]) -> str:
    """The ID of the one run of ``dag_id`` the UI has just created."""
    new = wait_for(f"a new {dag_id} run", lambda: set(airflow.runs(dag_id)) - known, 60)
    assert len(new) == 1, new
    return new.pop()


def test_reduce_raw_biases_from_the_trigger_form(airflow: AirflowServices, browser: Browser,
                                                          data: dict[str, Path]) -> None:
    raw_sums = checksums(sorted(data["biases"].rglob("*.fits")))
    form = browser.open_trigger_form("muse_reduce")
    assert form.sections_with_errors() == ["Run Parameters"]  # raw_dir and output_dir: the only required fields
    assert not form.submit_button().is_enabled()
    form.type("raw_dir", str(data["biases"]))
    form.type("output_dir", str(data["reduced"]))
    form.switch("global__using_ESO_Calibration", False)  # raw calibrations: no ESO masters
    assert form.sections_with_errors() == []
    form.submit()

    run_id = _new_run(airflow, "muse_reduce", set())
    assert browser.follow_run("muse_reduce", run_id, REDUCE_TIMEOUT) == "Success", \
        airflow.task_states("muse_reduce", run_id)
    conf = airflow.runs("muse_reduce")[run_id]["conf"]
    assert conf["raw_dir"] == str(data["biases"]) and conf["global__using_ESO_Calibration"] is False
    assert conf["run_name"] in (None, "") and conf["calibration__esorex_kwargs_bias"] in (None, "")  # not set
    (run_dir,) = data["reduced"].glob("run-*")
    masters = sorted(run_dir.rglob("MASTER_BIAS-*.fits"))
    assert [p.name for p in masters] == [f"MASTER_BIAS-{ifu:02d}.fits" for ifu in BIAS_IFUS]
    assert {fits.getval(p, "HIERARCH ESO PRO CATG") for p in masters} == {"MASTER_BIAS"}
    assert checksums(sorted(data["biases"].rglob("*.fits"))) == raw_sums


def test_a_refused_plan_fails_the_run_once(airflow: AirflowServices, browser: Browser, data: dict[str, Path]) -> None:
    known = set(airflow.runs("muse_reduce"))
    form = browser.open_trigger_form("muse_reduce")
    form.type("raw_dir", str(data["archive"]))  # raw science and calibrations, no ESO masters
    form.type("output_dir", str(data["reduced"]))
    form.submit()  # using_ESO_Calibration stays on, as by default

    run_id = _new_run(airflow, "muse_reduce", known)
    assert browser.follow_run("muse_reduce", run_id, 300) == "Failed"
    states = {(task, index): state for task, index, state in airflow.task_states("muse_reduce", run_id)}
    assert {key for key, state in states.items() if state == "failed"} == {("plan", -1)}, states
    assert set(states.values()) <= {"failed", "upstream_failed", "skipped"}, states
    log = airflow.task_log("muse_reduce", run_id, "plan")
    assert "global.using_ESO_Calibration is true but the pool has no ESO master calibrations" in log
    assert "set it to false to reduce the raw calibrations" in log
    assert "Traceback" not in log  # the message is the failure, not a stack of frames


def test_run_one_recipe_from_the_trigger_form(airflow: AirflowServices, browser: Browser,
                                              data: dict[str, Path]) -> None:
    biases = sorted(p for p in data["biases"].glob("*.fits") if fits.getval(p, "HIERARCH ESO DPR TYPE") == "BIAS")
    assert len(biases) >= 3
    form = browser.open_trigger_form("muse_recipe")
    assert not form.submit_button().is_enabled()  # no SOF, no output directory yet
    form.paste_json("sof", [[str(p), "BIAS"] for p in biases])
    form.paste_json("parameters", {"nifu": 1})
    form.type("expected_products", "MASTER_BIAS")
    form.type("output_dir", str(data["recipe"]))
    form.submit()

    run_id = _new_run(airflow, "muse_recipe", set())
    assert browser.follow_run("muse_recipe", run_id, 300) == "Success", airflow.task_states("muse_recipe", run_id)
    (master,) = data["recipe"].rglob("MASTER_BIAS*.fits")
    assert fits.getval(master, "HIERARCH ESO PRO CATG") == "MASTER_BIAS"
    assert fits.getval(master, "HIERARCH ESO PRO REC1 ID") == "muse_bias"


def test_backfill_two_nights_from_the_trigger_dialog(airflow: AirflowServices, browser: Browser,
                                                     data: dict[str, Path]) -> None:
    airflow.cli("dags", "pause", "muse_reduce")  # the OB reductions stay queued: test_nightly.py runs them
    # Unpaused beforehand, as on an observatory's machine: the dialog's "Unpause on trigger" makes the
    # scheduler start the latest night's run in the same second, and SQLite then refuses the backfill (503)
    airflow.cli("dags", "unpause", "muse_nightly")
    airflow.wait_for_runs("muse_nightly", lambda k, v: v["run_type"] == "scheduled", 1, 300)
    known_reductions = set(airflow.runs("muse_reduce"))
    form = browser.open_trigger_form("muse_nightly")
    form.choose_backfill()
    form.date_range(NIGHT0.replace("-", "/"), NIGHT1.replace("-", "/"), "12:00")
    form.check("Override parameters on existing runs")  # without it the dialog sends none of the fields below
    form.type("landing_dir", str(data["archive"]))
    form.type("output_dir", str(data["nightly"]))
    form.paste_json("config", {"global": {"using_ESO_Calibration": False}})
    assert form.sections_with_errors() == []
    form.submit("Run Backfill")

    runs = airflow.wait_for_runs("muse_nightly", lambda k, v: v["run_type"] == "backfill", 2, 600)
    assert sorted(str(run["logical_date"])[:10] for run in runs.values()) == [NIGHT0, NIGHT1]
    assert {run["state"] for run in runs.values()} == {"success"}, {k: airflow.task_states("muse_nightly", k)
                                                                    for k in runs}
    requested = set(airflow.runs("muse_reduce")) - known_reductions
    night0 = {ob["ob"]: ob for ob in json.loads((data["nightly"] / "nightly" / f"{NIGHT0}.json").read_text())["obs"]}
    night1 = {ob["ob"]: ob for ob in json.loads((data["nightly"] / "nightly" / f"{NIGHT1}.json").read_text())["obs"]}
    assert night0["SYN-N1A_OB1"]["status"] == "ready", night0  # ready: the pasted config reached the run
    assert night1["SYN-N2A_OB1"]["status"] == "ready", night1
    assert night1["SYN-N1A_OB1"]["run_id"] == night0["SYN-N1A_OB1"]["run_id"]  # looked back: the same run
    assert requested == {night0["SYN-N1A_OB1"]["run_id"], night1["SYN-N2A_OB1"]["run_id"]}
    assert not (data["nightly-default"] / "nightly" / f"{NIGHT0}.json").exists()
    run_id = min(runs)
    assert browser.follow_run("muse_nightly", run_id, 60) == "Success"
