"""The config's per-stage switches, applied to a finished plan: ``execute``, ``create_sof``, ``n_CPU`` and reuse.

MUSEreduce let users switch stages off (``<section>.execute: false``) to re-run only part of a chain,
with the later stages reading what the skipped ones had left in their folders; ``create_sof: false``
made a step run a SOF the user had edited by hand. Both are kept, with explicit meanings:

* ``execute: false``: the step stays in the plan but is not run; it hands on the products its
  directory holds from an earlier finished run (:mod:`muse_operators.step_record`). With none, the step
  is skipped and what needs it cannot run (reported, never a silent gap).
  ``exp_align.execute``/``exp_combine.execute`` remove those steps instead (combining without alignment,
  or not combining, are results of their own); see :mod:`muse_operators.science_planner`.
* ``create_sof: false``: the step runs ``<its directory>/<recipe>.sof`` as the user edited it.
* ``global.n_CPU``: OMP_NUM_THREADS of every recipe (-1: all cores of the worker). MUSEreduce's setting
  never reached esorex (bug 6 in docs/musereduce-fixes.md).
* ``global.reuse_products``: steps identical to a finished one (inputs, parameters, image) are not re-run.
* ``global.recipe_timeout_minutes``: a recipe still running after this long is stopped and its task fails
  (a damaged input can make a recipe loop forever, holding a worker slot).
"""
from __future__ import annotations

from typing import Any

from .plan import ReductionPlan, Step

CALIBRATION_STAGES = ("bias", "dark", "flat", "wavecal", "lsf", "twilight")
SKY_STAGES = ("create_sky", "sky_zero", "sky_refit", "sky_lines")


def section_of(step: Step) -> str:
    """The config section whose switches govern ``step``."""
    if step.stage in CALIBRATION_STAGES:
        return "calibration"
    if step.stage in SKY_STAGES:
        return "sky"
    return {"scibasic": "sci_basic", "standard": "std_flux", "scipost": "sci_post"}.get(step.stage, step.stage)


def runs(step: Step, cfg: Any) -> bool:
    """Whether the config lets ``step`` run (else it only hands on earlier products)."""
    section = section_of(step)
    allowed = bool(cfg.get_path(f"{section}.execute"))
    if step.stage == "scibasic":
        allowed = allowed and bool(cfg.get_path("sci_basic.execute_std" if step.reads_standard
                                                 else "sci_basic.execute_sci"))
    return allowed


def apply_switches(plan: ReductionPlan, cfg: Any) -> None:
    """Set every step's run switches, threads and timeout from the config; report the switched-off steps."""
    threads = cfg.get_path("global.n_CPU")
    reuse = bool(cfg.get_path("global.reuse_products"))
    timeout = int(cfg.get_path("global.recipe_timeout_minutes"))
    switched_off: dict[str, int] = {}
    for step in plan.steps:
        section = section_of(step)
        step.execute = runs(step, cfg)
        python = step.recipe.startswith("python:")
        step.create_sof = python or bool(cfg.get_path(f"{section}.create_sof"))
        step.reuse = reuse
        step.threads = None if python or threads in (None, -1) else int(threads)
        step.timeout_minutes = None if python else timeout
        if not step.execute:
            switched_off[step.stage] = switched_off.get(step.stage, 0) + 1
    for stage, count in switched_off.items():
        plan.report.append(f"{stage}: {count} step(s) switched off by the config (execute: false); they hand on "
                           "the products of their last finished run, if any")
    manual = [s.name for s in plan.steps if not s.create_sof]
    if manual:
        plan.report.append(f"create_sof is false for {len(manual)} step(s): each runs the <recipe>.sof in its "
                           "directory as you left it")
