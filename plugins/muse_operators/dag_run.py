"""What one ``muse_reduce`` run does before and between its recipes, without Airflow.

The DAG file only wires tasks; the work of its bookkeeping tasks lives here, tested like the rest of the
package:

* :meth:`RunRequest.from_params` turns the trigger form (or a REST/CLI ``conf``) into the run's request:
  only ``raw_dir`` and ``output_dir`` are required; an empty field (``None`` or ``""``, which is what the
  web UI sends for a field left empty) means "not set", and every problem is reported at once;
* :func:`plan_run` plans the request and writes the plan of this DAG run, or raises :class:`RunRefused`
  with every reason, which is then the run's one failure;
* :func:`load_plan` and :func:`stage_outputs` are what the later tasks share.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic_write import write_text_atomically
from .config import Config, ConfigError, load_config
from .config.form import config_from_form
from .errors import MuseAirflowError
from .plan import ReductionPlan

ProductMap = Mapping[str, list[str]]


class RunRefused(MuseAirflowError, ValueError):
    """The run cannot start: its request or its plan has errors (each one names the setting or file)."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("this run cannot start:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = list(problems)


def _text(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    return value.strip() if isinstance(value, str) else ""


def _directory_problems(raw_dir: str, output_dir: str) -> list[str]:
    """What is wrong with the two required directories (as seen by the worker that plans the run)."""
    problems = []
    if not raw_dir:
        problems.append("raw_dir is empty: give the directory that holds the raw MUSE files")
    elif not os.path.isabs(raw_dir):
        problems.append(f"raw_dir {raw_dir!r} is not an absolute path: the recipes run in containers, give the "
                        "full path (e.g. /data/muse/raw)")
    elif not Path(raw_dir).is_dir():
        problems.append(f"raw_dir {raw_dir} is not a directory on the Airflow worker: check the path (and that "
                        "the directory is mounted there)")
    if not output_dir:
        problems.append("output_dir is empty: give the directory the products should go to")
    elif not os.path.isabs(output_dir):
        problems.append(f"output_dir {output_dir!r} is not an absolute path: give the full path")
    elif raw_dir and os.path.isabs(raw_dir) and Path(output_dir).resolve().is_relative_to(Path(raw_dir).resolve()):
        problems.append(f"output_dir {output_dir} is inside raw_dir {raw_dir}: raw data is mounted read-only and "
                        "never written; put the products elsewhere")
    return problems


@dataclass(frozen=True)
class RunRequest:
    """A reduction as asked for: where the raw frames are, where products go, with which settings."""

    raw_dir: str
    output_dir: str
    config: Config
    run_name: str | None = None
    ifus: list[int] | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RunRequest:
        """The request of a DAG run's params; :class:`RunRefused` lists every problem at once."""
        problems = []
        raw_dir, output_dir = _text(params, "raw_dir"), _text(params, "output_dir")
        problems.extend(_directory_problems(raw_dir, output_dir))
        ifus = params.get("ifus") or None  # [] (an emptied list field) means "not set": every IFU with data
        config: Config | None = None
        try:
            config = load_config(config_from_form(params, params.get("config") or {}) or None)
        except ConfigError as exc:
            problems.extend(exc.problems)
        if problems or config is None:
            raise RunRefused(problems)
        return cls(raw_dir, output_dir, config, _text(params, "run_name") or None, ifus)


def plan_file_name(run_id: str | None) -> str:
    """``plans/<DAG run>.json``: the DAG run ID made filesystem-safe (manual runs: ``manual.json``)."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", run_id or "manual") + ".json"


def plan_run(request: RunRequest, run_id: str | None, index_path: str | Path | None = None
             ) -> tuple[Path, ReductionPlan]:
    """Plan the request into its run directory; returns the plan file of this DAG run and the plan.

    One file per DAG run (``<run dir>/plans/<run>.json``): per-OB runs of one config (muse_nightly) share
    the run directory, and each run's later tasks must read their own plan. ``<run dir>/plan.json`` is a
    copy of the latest, for people. A plan with errors, or with nothing to do, is refused and not written.
    """
    from .planner import plan_reduction
    from .run_dir import run_directory

    run_dir = run_directory(request.output_dir, request.config, request.ifus, request.run_name)
    reduction = plan_reduction(request.raw_dir, run_dir, request.config, request.ifus, index_path=index_path)
    if reduction.errors:
        raise RunRefused(reduction.errors)
    if not reduction.steps:
        raise RunRefused([f"nothing to reduce in {request.raw_dir}: no raw frame there needs a recipe call"])
    path = run_dir / "plans" / plan_file_name(run_id)
    path.parent.mkdir(exist_ok=True)
    text = reduction.to_json()
    write_text_atomically(path, text)
    write_text_atomically(run_dir / "plan.json", text)
    return path, reduction


def load_plan(plan_path: str | Path) -> ReductionPlan:
    return ReductionPlan.from_json(Path(plan_path).read_text())


def stage_outputs(*per_stage: Iterable[ProductMap | None] | None) -> list[ProductMap]:
    """The product maps of every earlier stage in one list (a stage that did not run contributes none)."""
    return [output for stage in per_stage for output in (stage or []) if output]
