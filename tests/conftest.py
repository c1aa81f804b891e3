"""Shared fixtures: the esorex image, a throw-away Airflow on SQLite, synthetic raw frames.

Tests that need Docker or Airflow *fail* (never skip) when those are missing: the README's set-up
command provides them, and a skipped real-path test would hide a broken foundation.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from muse_operators.cli import airflow_command, airflow_environment
from muse_operators.esorex_image import configured_image, inspect_image
from muse_operators.headers import RawFrame
from muse_operators.synthetic.raw_frames import write_bias_set

from .header_pool import night_frames

REPO = Path(__file__).resolve().parents[1]
# The recipe-parameter snapshot of the offline image (muse-airflow recipe-params --snapshot writes it).
RECIPE_PARAMS_SNAPSHOT = REPO / "config" / "recipe_params" / "muse-2.8.7-debian.json"


def _recipe_threads_per_worker() -> str:
    """OpenMP threads per recipe: the machine's cores shared among the xdist workers, at least 1.

    Each worker runs its own reductions; with every recipe on all cores, two workers put four spinning
    OpenMP threads on two cores. Set MUSE_OMP_NUM_THREADS to override.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    return str(max(1, (os.cpu_count() or 1) // workers))


os.environ.setdefault("MUSE_OMP_NUM_THREADS", _recipe_threads_per_worker())

# The tests that reduce whole nights resample their cubes over 6000-7850 Å only: every measurement they make
# lies in 6050-7800 Å (continuum windows 6050-6250 and 7400-7800 Å, [OI] 6300, Hα), and scipost and
# exp_combine, 40 % of the recipe time over the whole 4750-9350 Å, then take a third of it (the CI time
# limit). The calibrations still cover every wavelength.
CUBE_RANGE = "--lambdamin=6000 --lambdamax=7850"
NARROW_CUBES = {"sci_post": {"esorex_kwargs": CUBE_RANGE}, "exp_combine": {"esorex_kwargs": CUBE_RANGE}}

# The modules that reduce whole nights, longest first. With ``--dist loadscope --no-loadscope-reorder`` xdist
# hands modules out in this order, so the two longest start at once on different workers and the short
# modules fill in around them. (xdist's own reorder puts modules with many tests first: the one-test
# nightly module then started last and the run overran the CI limit.)
LONGEST_FIRST = ("test_science_chain.py", "test_nightly.py", "test_web_ui.py", "test_dags.py", "test_compose.py",
                 "test_synthetic_recipes.py", "test_esorex_operator.py", "test_ifu_merged.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within a module kept


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """Keep each phase's report on the test item: fixtures then know whether the test failed (screenshots)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def esorex_image() -> str:
    """The configured esorex image; fails with the build command if it is not there."""
    image = configured_image()
    try:
        inspect_image(image)
    except Exception as exc:  # docker not running, or image missing: both are set-up faults
        pytest.fail(f"esorex image {image!r} unusable: {exc}. Run the README's set-up (scripts/setup.sh).")
    return image


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A private AIRFLOW_HOME with a migrated SQLite database, loading this checkout's dags/."""
    home = tmp_path_factory.mktemp("airflow_home")
    env = airflow_environment(home)
    subprocess.run([*airflow_command(), "db", "migrate"], env=env, check=True, capture_output=True)
    return env


DagRunner = Callable[[str, dict], subprocess.CompletedProcess]


@pytest.fixture(scope="session")
def run_dag(airflow_env: dict[str, str], esorex_image: str) -> DagRunner:
    """Run a DAG with ``airflow dags test -c CONF``; returns the process (exit 1 when the run failed)."""

    def run(dag_id: str, conf: dict, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*airflow_command(), "dags", "test", dag_id, "-c", json.dumps(conf)],
            env=airflow_env, capture_output=True, text=True, timeout=timeout,
        )

    return run


@pytest.fixture()
def header_night() -> list[RawFrame]:
    """A night of header-only frames for the planners (tests/header_pool.py), fresh for each test."""
    return night_frames()


@pytest.fixture(scope="session")
def bias_raw(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three raw biases (IFU 1 with data, IFUs 2-24 dead), written with astropy in MUSE's raw format."""
    raw_dir = tmp_path_factory.mktemp("raw")
    raw_dir.chmod(0o755)  # as an archive directory is; the recipes run as an unprivileged user
    paths = write_bias_set(raw_dir, [1], count=3, seed=11)
    for path in paths:
        path.chmod(0o444)
    return paths


def checksums(paths: list[Path]) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
