"""EsorexOperator on the real esorex image, inside real Airflow runs (``airflow dags test``).

What a user relies on: a master bias that is the median of its inputs, a failed recipe that fails
its task with esorex's own error lines and leaves no product behind, raw data that is never touched,
and a mistyped parameter that is rejected before any container starts.
"""
from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import docker
import numpy as np
import pytest
from astropy.io import fits

from muse_operators.cli import airflow_command
from muse_operators.synthetic.detector import PORT_POSITIONS, overscan_levels, quadrant_regions, trim
from muse_operators.synthetic.raw_frames import bias_structure

from .conftest import checksums

pytestmark = [pytest.mark.container, pytest.mark.airflow]


def _conf(recipe: str, sof: list[list[str]], output_dir: Path, parameters: dict, expected: list[str]) -> dict:
    return {"recipe": recipe, "sof": sof, "parameters": parameters, "expected_products": expected,
            "output_dir": str(output_dir)}


def _overscan_corrected(path: Path) -> np.ndarray:
    raw = fits.getdata(path, "CHAN01").astype(np.float64)
    image, levels = trim(raw), overscan_levels(raw)
    for port in PORT_POSITIONS:
        image[quadrant_regions(port)[2]] -= levels[port]
    return image


def _fits_under(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.fits")) if directory.exists() else []


def _containers_created_for(output_dir: Path, since: int) -> list[dict]:
    label = f"org.muse-airflow.recipe.output-dir={output_dir}"
    return list(docker.from_env().events(since=since, until=int(time.time()) + 1, decode=True,
                                         filters={"type": "container", "event": "create", "label": label}))


def test_master_bias_is_the_median_of_the_raw_biases(run_dag, bias_raw, tmp_path):
    out = tmp_path / "bias"
    before = checksums(bias_raw)
    since = int(time.time()) - 1
    result = run_dag("muse_recipe", _conf("muse_bias", [[str(p), "BIAS"] for p in bias_raw], out, {"nifu": 1},
                                          ["MASTER_BIAS"]))
    assert result.returncode == 0, result.stdout[-5000:]
    assert "state=success" in result.stdout
    assert len(_containers_created_for(out, since)) == 1

    master_path = out / "MASTER_BIAS-01.fits"
    assert [p.name for p in _fits_under(out)] == ["MASTER_BIAS-01.fits"]
    assert fits.getval(master_path, "HIERARCH ESO PRO CATG") == "MASTER_BIAS"
    assert (out / "muse_bias.log").is_file() and (out / "muse_bias.sof").is_file()
    assert not list(tmp_path.glob(".bias.staging-*")), "staging directory left behind"

    master = fits.getdata(master_path, "DATA").astype(np.float64)
    median = np.median([_overscan_corrected(p) for p in bias_raw], axis=0)
    assert master.shape == median.shape == (4112, 4096)
    ron = 2.7  # ADU, the largest of the synthetic ports (ReadoutModel)
    residual = master - median
    # The median of 3 frames scatters by ~1.2*RON/sqrt(3) ~ 1.9 ADU around the truth; the recipe's
    # sigma-clipped mean agrees with it to well within that, and with no offset.
    assert abs(residual.mean()) < 0.02
    assert residual.std() < 0.5 * ron
    # ... and it carries the CCD's fixed bias pattern, quadrant by quadrant.
    pattern = bias_structure(11, 1)
    for port in PORT_POSITIONS:
        region = quadrant_regions(port)[2]
        assert abs(master[region].mean() - pattern[region].mean()) < 0.05
    assert np.corrcoef(master[::16, ::16].ravel(), pattern[::16, ::16].ravel())[0, 1] > 0.7
    assert checksums(bias_raw) == before


@pytest.mark.parametrize(
    ("case", "recipe", "tag", "parameters", "esorex_error"),
    [
        ("missing input", "muse_flat", "FLAT", {"nifu": 1}, 'Required 1, found 0 frames with tag "MASTER_BIAS"'),
        ("bad parameter value", "muse_bias", "BIAS", {"nifu": 2}, "is dead"),
    ],
)
def test_failed_recipe_fails_the_task_with_the_esorex_log_and_leaves_no_product(
    run_dag, bias_raw, tmp_path, case, recipe, tag, parameters, esorex_error
):
    out = tmp_path / "product"
    before = checksums(bias_raw)
    expected = ["MASTER_FLAT"] if recipe == "muse_flat" else ["MASTER_BIAS"]
    result = run_dag("muse_recipe", _conf(recipe, [[str(p), tag] for p in bias_raw], out, parameters, expected))

    assert result.returncode != 0, case
    assert "state=failed" in result.stdout
    assert f"{recipe} failed" in result.stdout
    assert esorex_error in result.stdout, "the esorex error line must be in the task log"
    assert "[ ERROR ]" in result.stdout
    assert "data error: esorex ended with exit 255 and logged its error" in result.stdout  # esorex exits 255
    assert "not retried (the same input fails again)" in result.stdout
    assert _fits_under(out) == [], "a failed run must not leave products in the product directory"
    failed = list(tmp_path.glob(".product.failed-*"))
    assert len(failed) == 1 and (failed[0] / f"{recipe}.log").is_file(), "one attempt only: no retry"
    assert _fits_under(failed[0]) == [], "partial products are deleted"
    assert checksums(bias_raw) == before


def test_recipe_that_exits_0_without_the_expected_product_fails(run_dag, bias_raw, tmp_path):
    out = tmp_path / "product"
    conf = _conf("muse_bias", [[str(p), "BIAS"] for p in bias_raw], out, {"nifu": 1}, ["MASTER_BIAS", "MASTER_DARK"])
    result = run_dag("muse_recipe", conf)
    assert result.returncode != 0
    assert "did not write MASTER_DARK (it wrote: MASTER_BIAS)" in result.stdout
    assert _fits_under(out) == []


def test_unknown_parameter_is_rejected_before_any_container_starts(run_dag, bias_raw, tmp_path, esorex_image):
    since = int(time.time()) - 1
    conf = _conf("muse_bias", [[str(p), "BIAS"] for p in bias_raw], tmp_path / "bias",
                 {"nifu": 1, "combin": "median"}, ["MASTER_BIAS"])
    result = run_dag("muse_recipe", conf)

    assert result.returncode != 0
    message = result.stdout
    assert "recipe muse_bias has no parameter 'combin'" in message
    assert "valid parameters of muse_bias" in message
    for valid in ("--nifu", "--combine", "--overscan"):
        assert valid in message
    assert _containers_created_for(tmp_path / "bias", since) == [], "no container for an invalid parameter"
    assert not (tmp_path / "bias").exists()
    assert not list(tmp_path.glob(".bias.*")), "not even a staging directory is made"


def test_a_recipe_running_past_its_timeout_is_stopped_and_fails_its_task(run_dag, bias_raw, tmp_path):
    """A recipe that never ends (muse_scibasic looped on a truncated CCD) must not hold a worker for good."""
    out = tmp_path / "bias"
    conf = {**_conf("muse_bias", [[str(p), "BIAS"] for p in bias_raw], out, {"nifu": 1}, ["MASTER_BIAS"]),
            "timeout_minutes": 0.1}  # 6 s: muse_bias takes ~10 s on this frame set (more under load)
    result = run_dag("muse_recipe", conf)

    assert result.returncode != 0 and "state=failed" in result.stdout
    assert "muse_bias failed (stopped after 0.1 min (global.recipe_timeout_minutes" in result.stdout
    # a killed esorex never renames its log: the tail comes from the unfinished one, not "(no log written)"
    assert "(esorex did not finish: its unfinished .logfile)" in result.stdout
    assert "(no log written)" not in result.stdout
    assert _fits_under(out) == [], "a stopped recipe publishes nothing"
    label = f"org.muse-airflow.recipe.output-dir={out}"
    assert docker.from_env().containers.list(all=True, filters={"label": label}) == [], "container left behind"


def test_a_dead_attempts_container_and_staging_are_cleared_before_the_recipe_runs(
        run_dag, bias_raw, tmp_path, esorex_image):
    """A SIGKILLed worker leaves its recipe container running unowned and its staging directory behind.

    Here the leftovers are made as such a death leaves them (a container labelled for the step's output
    directory, still running; a ``.bias.staging-*`` directory with a partial FITS and a log). The next attempt
    kills and removes the container before its own starts, turns the staging directory into ``.failed-*``
    (log kept, FITS gone) and publishes a normal master bias.
    """
    out = tmp_path / "bias"
    client = docker.from_env()
    labels = {"org.muse-airflow.recipe": "muse_bias", "org.muse-airflow.recipe.output-dir": str(out)}
    orphan = client.containers.run(esorex_image, ["600"], entrypoint=["sleep"], detach=True, network_mode="none",
                                   labels=labels)
    try:
        stale = tmp_path / ".bias.staging-dead0001"
        stale.mkdir()
        (stale / "MASTER_BIAS-01.fits").write_bytes(b"partial")
        (stale / ".logfile").write_text("muse_bias started\n")

        result = run_dag("muse_recipe", _conf("muse_bias", [[str(p), "BIAS"] for p in bias_raw], out, {"nifu": 1},
                                              ["MASTER_BIAS"]))
        assert result.returncode == 0, result.stdout[-5000:]
        assert f"removing container {orphan.id[:12]} (running) of an earlier attempt" in result.stdout
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(orphan.id)
        assert not stale.exists()
        failed = tmp_path / ".bias.failed-dead0001"
        assert sorted(p.name for p in failed.iterdir()) == [".logfile"], "log kept, partial FITS deleted"
        assert fits.getval(out / "MASTER_BIAS-01.fits", "HIERARCH ESO PRO CATG") == "MASTER_BIAS"
    finally:
        try:
            orphan.remove(force=True)
        except docker.errors.NotFound:
            pass


def test_a_container_killed_from_outside_is_retried_and_the_retry_publishes(airflow_env, bias_raw, tmp_path):
    """An infrastructure fault (the recipe's container killed by someone else, not by its time limit) is
    retried by Airflow, and the retry publishes the product; a data error is not (test above)."""
    out = tmp_path / "bias"
    conf = _conf("muse_bias", [[str(p), "BIAS"] for p in bias_raw], out, {"nifu": 1}, ["MASTER_BIAS"])
    env = {**airflow_env, "MUSE_RECIPE_RETRIES": "1", "MUSE_RECIPE_RETRY_DELAY_S": "1"}
    label = f"org.muse-airflow.recipe.output-dir={out}"
    killed: list[str] = []

    def kill_the_first_container() -> None:
        client = docker.from_env()
        deadline = time.monotonic() + 300
        while not killed and time.monotonic() < deadline:
            for container in client.containers.list(filters={"label": label, "status": "running"}):
                time.sleep(2)  # esorex is working by now
                container.kill()
                killed.append(container.id)
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_the_first_container, daemon=True)
    killer.start()
    since = int(time.time()) - 1
    result = subprocess.run([*airflow_command(), "dags", "test", "muse_recipe", "-c", json.dumps(conf)],
                            env=env, capture_output=True, text=True, timeout=900)
    killer.join(timeout=5)

    assert killed, "the recipe's container never ran"
    assert "infrastructure fault: container killed by SIGKILL (exit 137)" in result.stdout, result.stdout[-5000:]
    assert result.returncode == 0 and "state=success" in result.stdout, result.stdout[-5000:]
    assert len(_containers_created_for(out, since)) == 2, "one attempt killed, one retry"
    assert fits.getval(out / "MASTER_BIAS-01.fits", "HIERARCH ESO PRO CATG") == "MASTER_BIAS"
    assert len(list(tmp_path.glob(".bias.failed-*"))) == 1, "the killed attempt's log is kept"
