"""Run one real recipe in the esorex image, the way the operator does, without Airflow.

The call is built by the project's own domain code (:func:`muse_operators.esorex_call.build_call`:
argument list, SOF in a staging directory, inputs mounted read-only at their host paths), run with
``docker run`` from an argument list (never a shell string) like ``benchmarks/operator_overhead.py``,
and its products are found by PRO.CATG and published with :mod:`muse_operators.products`.
Tests that check what a recipe makes of synthetic data use this, so they test the data, not Airflow.

Recipes take minutes, and ``pytest -n 2`` spreads one module's tests over both workers, each with its
own module fixtures; :func:`once` makes such a fixture's work happen once per test session instead,
whichever worker asks first.
"""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from muse_operators.esorex_call import build_call, container_user, docker_run_argv
from muse_operators.esorex_image import recipe_catalog
from muse_operators.products import ProductMap, categorise, discard, listed_products, publish


@dataclass(frozen=True)
class RecipeRun:
    """A finished recipe: its products by PRO.CATG, its log, and how long the container ran."""

    products: ProductMap
    log: Path
    seconds: float

    def product(self, category: str) -> Path:
        """The single product of ``category`` (the per-IFU recipes write one per category)."""
        paths = self.products[category]
        if len(paths) != 1:
            raise AssertionError(f"expected one {category}, got {paths}")
        return Path(paths[0])

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "log": str(self.log)}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> RecipeRun:
        return cls(products=dict(value["products"]), log=Path(value["log"]), seconds=float(value["seconds"]))


def run_recipe(
    image: str,
    recipe: str,
    sof: Iterable[tuple[Path | str, str]],
    output_dir: Path,
    parameters: Mapping[str, Any] | None = None,
    expected: Iterable[str] = (),
    threads: int = 2,
    timeout: float = 600.0,
) -> RecipeRun:
    """Run ``recipe`` on ``sof`` ((path, tag) pairs); products end up in ``output_dir``.

    Raises AssertionError with the log's tail if esorex fails or an ``expected`` category is missing.
    """
    call = build_call(recipe, [[str(path), tag] for path, tag in sof], output_dir, dict(parameters or {}))
    call.new_staging_dir()
    user = container_user()
    call.prepare_staging(user)
    call.check_readable(user)
    command = docker_run_argv(call, image, recipe_catalog(image), user, threads)
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - started
    assert call.staging_dir is not None
    if result.returncode != 0:
        tail = call.log_tail(60) or result.stdout[-4000:] + result.stderr[-4000:]
        kept = discard(call.staging_dir)
        raise AssertionError(f"{recipe} exited {result.returncode} (log kept in {kept}):\n{tail}")
    found = categorise(listed_products(call.staging_dir, call.products_list_name))
    missing = [category for category in expected if category not in found]
    if missing:
        tail = call.log_tail(60)
        kept = discard(call.staging_dir)
        raise AssertionError(f"{recipe} wrote no {', '.join(missing)} (log kept in {kept}):\n{tail}")
    products = publish(call.staging_dir, output_dir, found)
    return RecipeRun(products=products, log=output_dir / call.log_name, seconds=seconds)


def session_directory(tmp_path_factory: Any, name: str) -> Path:
    """A directory shared by all pytest-xdist workers of this session (and by nothing else)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's base; each worker's own is a subdirectory of it
    directory = base / name
    directory.mkdir(exist_ok=True)
    return directory


def once(directory: Path, key: str, compute: Callable[[], Any]) -> Any:
    """``compute()`` (a JSON-serialisable result) run once per ``directory``, across processes.

    The first caller runs it under an exclusive lock and records the result; later callers, in this
    or another worker, wait for the lock and read the record. A failure is not recorded, so every
    caller that needs the result sees the failure itself.
    """
    record = directory / f"{key}.json"
    with open(directory / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if record.is_file():
            return json.loads(record.read_text())
        result = compute()
        tmp = record.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(result))
        os.replace(tmp, record)
        return result
