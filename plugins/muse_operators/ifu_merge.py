"""``global.ifu_tasks = merged``: one recipe call for all IFUs (``--nifu=-1 --merge``), as MUSEreduce ran them.

The planner always plans the per-CCD recipes (bias, dark, flat, wavecal, lsf, scibasic) once per IFU
(``--nifu=N``): 24 small tasks per exposure that Airflow can spread over many workers, and a failure
stops one IFU, not the exposure. With ``merged`` this transform folds each such group into one step:

* name and directory lose the IFU (``bias.<set>.01..24`` -> ``bias.<set>`` in ``.../<set>/``);
* parameters ``nifu=-1`` (the recipe runs its IFUs in parallel with OpenMP) and ``merge=true`` where
  the recipe has it (one ``MASTER_BIAS.fits`` with ``CHANnn`` extensions; pixel tables stay per IFU);
* inputs are the union of the group's inputs, and every reference to a folded step, here or in later
  steps, points to the merged one (duplicates dropped).

A merged call reduces every IFU of its raw frames: the ``ifus`` restriction cannot reach it. And the
recipes after muse_bias stop at the first IFU whose master calibration is missing (``Required 1, found 0
frames with tag "MASTER_BIAS" with IFU 13``, measured with muse_flat 2.8.7), so a group that does not
cover all 24 IFUs (a dead IFU, or ``ifus`` given) is a plan error naming the way out (``per_ifu``).
"""
from __future__ import annotations

from pathlib import Path

from .plan import ReductionPlan, SofInput, Step

PER_IFU_STAGES = ("bias", "dark", "flat", "wavecal", "lsf", "scibasic")
ALL_IFUS = set(range(1, 25))
RECIPES_WITH_MERGE = {"muse_bias", "muse_dark", "muse_flat", "muse_wavecal", "muse_lsf", "muse_scibasic"}


def _group_name(step: Step) -> str:
    """``bias.<set>.03`` -> ``bias.<set>`` (the per-IFU suffix the planners add)."""
    return step.name.rsplit(".", 1)[0]


def _dedupe(inputs: list[SofInput]) -> list[SofInput]:
    seen: set[tuple[str, str | None, str | None, str | None]] = set()
    kept = []
    for item in inputs:
        key = (item.tag, item.path, item.step, item.catg)
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return kept


def merge_ifu_steps(plan: ReductionPlan) -> None:
    """Fold the per-IFU steps of ``plan`` into one merged step per group, in place."""
    renamed: dict[str, str] = {}
    merged: dict[str, Step] = {}
    covered: dict[str, set[int]] = {}
    steps: list[Step] = []
    for step in plan.steps:
        if step.stage not in PER_IFU_STAGES or step.ifu is None:
            steps.append(step)
            continue
        name = _group_name(step)
        renamed[step.name] = name
        covered.setdefault(name, set()).add(step.ifu)
        if name in merged:
            merged[name].inputs += step.inputs
            continue
        parameters = {k: v for k, v in step.parameters.items() if k != "nifu"}
        parameters["nifu"] = -1
        if step.recipe in RECIPES_WITH_MERGE:
            parameters["merge"] = True
        folded = Step(name=name, recipe=step.recipe, stage=step.stage, inputs=list(step.inputs),
                      output_dir=str(Path(step.output_dir).parent), parameters=parameters,
                      expected_products=list(step.expected_products), ifu=None,
                      notes=[*step.notes, "all IFUs in one call (global.ifu_tasks = merged)"],
                      execute=step.execute, create_sof=step.create_sof, reuse=step.reuse, threads=step.threads,
                      timeout_minutes=step.timeout_minutes)
        merged[name] = folded
        steps.append(folded)
    for step in steps:
        step.inputs = _dedupe([SofInput(i.tag, i.path, renamed.get(i.step or "", i.step), i.catg)
                               for i in step.inputs])
    plan.steps = steps
    for name, ifus in covered.items():
        if merged[name].recipe != "muse_bias" and ifus != ALL_IFUS:
            plan.errors.append(
                f"{name}: global.ifu_tasks = merged runs {merged[name].recipe} --nifu=-1 over all 24 IFUs, but only "
                f"IFUs {', '.join(map(str, sorted(ifus)))} have data here (dead IFUs, or the ifus setting); the recipe "
                "would stop at the first IFU without a master calibration. Use global.ifu_tasks = per_ifu.")
    if merged:
        plan.report.append(f"global.ifu_tasks = merged: {len(renamed)} per-IFU steps folded into {len(merged)} "
                           "calls with --nifu=-1 --merge")
