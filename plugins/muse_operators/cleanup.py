"""The ``cleanup`` section: remove intermediate products after a run finished, to save disk space.

A MUSE reduction's pixel tables are most of its size (8.3 of 9.9 GB for the synthetic 3-IFU night), and
nobody reads them once the cubes exist. The clean-up runs only after *every* planned step finished
(the DAG's last task), removes only files the run itself published inside its run directory, and never
touches the raw data. What goes:

* ``cleanup.execute``: the science pixel tables, i.e. every product of the OBJECT/SKY scibasic steps and
  scipost's PIXTABLE_* (the per-exposure cubes, images and sky products stay);
* ``include_std``: the standard star's folder ``reduced/std/``;
* ``include_calibrations``: the ``calibrations/`` folder (own master calibrations);
* ``include_combined``: the per-exposure scipost products of exposures that went into a combined cube.

Removed products make their steps' records incomplete (:mod:`muse_operators.step_record`), so a later
run re-makes them when something needs them, rather than handing on files that are gone.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .plan import ReductionPlan, products_by_step


def cleanup_targets(plan: ReductionPlan, outputs: Iterable[Mapping[str, list[str]] | None], cfg: Any) -> list[Path]:
    """Files and folders the clean-up settings remove, all inside the run directory."""
    if not cfg.get_path("cleanup.execute"):
        return []
    root = Path(plan.output_dir)
    known = products_by_step(plan, outputs)
    targets: set[Path] = set()
    combined = {dep for s in plan.by_stage("exp_combine") if s.name in known for dep in s.depends_on}
    for step in plan.steps:
        made = known.get(step.name, {})
        if step.stage == "scibasic" and not step.reads_standard:
            targets |= {Path(p) for paths in made.values() for p in paths}
        elif step.stage == "scipost":
            whole = cfg.get_path("cleanup.include_combined") and step.name in combined
            targets |= {Path(p) for catg, paths in made.items() for p in paths if whole or catg.startswith("PIXTABLE")}
    if cfg.get_path("cleanup.include_std"):
        targets.add(root / "reduced" / "std")
    if cfg.get_path("cleanup.include_calibrations"):
        targets.add(root / "calibrations")
    return sorted(t for t in targets if root in t.parents)


def remove(targets: Iterable[Path]) -> tuple[int, int]:
    """Delete ``targets``; return (files and folders removed, bytes freed)."""
    count = freed = 0
    for target in targets:
        if target.is_dir():
            freed += sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
            shutil.rmtree(target)
        elif target.is_file():
            freed += target.stat().st_size
            target.unlink()
        else:
            continue
        count += 1
    return count, freed
