"""The reduction plan: plain, printable, JSON-serialisable steps that the DAG maps over.

The plan is the contract between the domain core and Airflow. A step is one recipe call; its inputs are
either files (raw frames, static calibrations) or *products of other steps*, named by step and PRO.CATG.
Those are resolved only at run time from the upstream tasks' XComs (``{PRO.CATG: [paths]}``), so no step
ever finds its inputs by globbing a shared folder, and printing the plan shows exactly what will run.

Steps are grouped into stages (``bias``, ``flat``, ... ``exp_combine``) in dependency order; the DAG maps
one task per step of a stage. :mod:`muse_operators.planner` builds plans from a raw pool.
"""
from __future__ import annotations

import json
from pathlib import Path
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import MuseAirflowError

# Stage order = dependency order of MUSEreduce's chain (bias -> ... -> exp_combine).
# sky_zero, sky_refit and sky_lines exist only with sky.modified (Zeidler et al. 2019, see sky.py).
STAGES = ("bias", "dark", "flat", "wavecal", "lsf", "twilight", "scibasic", "standard", "create_sky",
          "sky_zero", "sky_refit", "sky_lines", "scipost", "exp_align", "exp_combine")
PYTHON_STAGES = ("sky_zero", "sky_lines")  # run as Python tasks (python_steps), not in the esorex image


class PlanError(MuseAirflowError, ValueError):
    """A plan that cannot run: missing required inputs, a dependency on an unknown step, a cycle."""


@dataclass
class SofInput:
    """One SOF line source: a file (``path``) or the product ``catg`` of step ``step``."""

    tag: str
    path: str | None = None
    step: str | None = None
    catg: str | None = None

    def describe(self) -> str:
        return self.path or f"<{self.catg or self.tag} of {self.step}>"


@dataclass
class Step:
    """One recipe call: what goes in, with which parameters, where products go, and why."""

    name: str
    recipe: str
    stage: str
    inputs: list[SofInput]
    output_dir: str
    parameters: dict[str, Any] = field(default_factory=dict)
    expected_products: list[str] = field(default_factory=list)
    ifu: int | None = None
    notes: list[str] = field(default_factory=list)
    # Run switches (muse_operators.switches): execute=False hands on the products of an earlier run;
    # create_sof=False runs the SOF the user edited; reuse: an identical finished call is not repeated.
    execute: bool = True
    create_sof: bool = True
    reuse: bool = True
    threads: int | None = None
    timeout_minutes: int | None = None  # stop the recipe after this long (global.recipe_timeout_minutes)

    @property
    def reads_standard(self) -> bool:
        """A step of the standard star (its scibasic reads the raw STD frame)."""
        return any(item.tag == "STD" for item in self.inputs)

    @property
    def depends_on(self) -> list[str]:
        return sorted({i.step for i in self.inputs if i.step})

    def resolve_sof(self, products: Mapping[str, Mapping[str, list[str]]]) -> list[list[str]]:
        """``[[path, tag], ...]`` with every product input replaced by the upstream step's files."""
        sof: list[list[str]] = []
        for item in self.inputs:
            if item.path:
                sof.append([item.path, item.tag])
                continue
            made = products.get(item.step or "")
            if made is None:
                raise PlanError(f"{self.name}: the products of {item.step} are not known (did it run?)")
            paths = made.get(item.catg or item.tag, [])
            if not paths:
                raise PlanError(f"{self.name}: {item.step} wrote no {item.catg or item.tag} "
                                f"(it wrote {', '.join(sorted(made)) or 'nothing'})")
            sof.extend([p, item.tag] for p in paths)
        return sof

    def operator_kwargs(self, products: Mapping[str, Mapping[str, list[str]]] | None = None) -> dict[str, Any]:
        """EsorexOperator (or ``python_steps.run``) keyword arguments, inputs resolved."""
        return {
            "recipe": self.recipe,
            "sof": self.resolve_sof(products or {}),
            "output_dir": self.output_dir,
            "parameters": self.parameters,
            "expected_products": self.expected_products,
            "reuse": self.reuse,
            "run_recipe": self.execute,
            "use_existing_sof": not self.create_sof,
            "omp_num_threads": self.threads,
            "timeout_minutes": self.timeout_minutes,
        }


@dataclass
class ReductionPlan:
    raw_dir: str
    output_dir: str
    steps: list[Step] = field(default_factory=list)
    report: list[str] = field(default_factory=list)  # every decision worth reading, in order
    errors: list[str] = field(default_factory=list)  # what prevents (part of) the reduction
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    unclassified: list[tuple[str, str]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)  # the settings it was planned with (clean-up reads them)
    # What loading the config said (renamed keys, values normalised; legal but suspicious combinations):
    # shown by describe(), so by `muse-airflow plan`, the DAG's plan task and in --json.
    config_notes: list[str] = field(default_factory=list)
    config_warnings: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        data = asdict(self)
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> ReductionPlan:
        data = json.loads(text)
        steps = [Step(**{**s, "inputs": [SofInput(**i) for i in s["inputs"]]}) for s in data.pop("steps")]
        plan = cls(**data, steps=steps)
        plan.unreadable = [tuple(x) for x in plan.unreadable]  # type: ignore[misc]
        plan.unclassified = [tuple(x) for x in plan.unclassified]  # type: ignore[misc]
        return plan

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise PlanError(f"no step named {name!r} in the plan")

    def by_stage(self, stage: str) -> list[Step]:
        return [s for s in self.steps if s.stage == stage]

    def by_recipe(self, recipe: str) -> list[Step]:
        return [s for s in self.steps if s.recipe == recipe]

    def check(self) -> None:
        """Every dependency names an existing step of an earlier stage (so stages can run in order)."""
        names = {s.name: s for s in self.steps}
        if len(names) != len(self.steps):
            raise PlanError("two steps share a name")
        for step in self.steps:
            for dep in step.depends_on:
                if dep not in names:
                    raise PlanError(f"{step.name} depends on unknown step {dep}")
                if STAGES.index(names[dep].stage) >= STAGES.index(step.stage):
                    raise PlanError(f"{step.name} ({step.stage}) depends on {dep} of a later or same stage")

    def describe(self) -> list[str]:
        lines = [f"raw: {self.raw_dir}", f"products: {self.output_dir}"]
        lines += [f"config: {note}" for note in self.config_notes]
        lines += [f"WARNING config: {warning}" for warning in self.config_warnings]
        lines += [f"  {line}" for line in self.report]
        for path, reason in self.unreadable:
            lines.append(f"UNREADABLE {path}: {reason}")
        for stage in STAGES:
            steps = self.by_stage(stage)
            if not steps:
                continue
            lines.append(f"[{stage}] {len(steps)} step(s)")
            for step in steps:
                params = " ".join(f"--{k}={v}" for k, v in step.parameters.items())
                switches = ("" if step.execute else "  [execute: false, hands on earlier products]") + (
                    "" if step.create_sof else "  [create_sof: false, runs the edited SOF]")
                lines.append(f"  {step.name}: {step.recipe} {params}".rstrip() + switches)
                lines += [f"      {i.tag:<16} {i.describe()}" for i in step.inputs]
                lines.append(f"      -> {step.output_dir} ({', '.join(step.expected_products)})")
                lines += [f"      note: {n}" for n in step.notes]
        lines += [f"ERROR: {e}" for e in self.errors]
        return lines


def products_by_step(plan: ReductionPlan,
                     outputs: Iterable[Mapping[str, list[str]] | None]) -> dict[str, dict[str, list[str]]]:
    """Attribute task outputs (``{PRO.CATG: [paths]}`` XComs, any order, failed ones missing or None) to steps.

    A product lives in its step's output directory, which is unique per step, so outputs are matched by
    directory rather than by map index: a failed or skipped task instance shifts nothing.
    """
    by_dir = {str(Path(step.output_dir)): step.name for step in plan.steps}
    known: dict[str, dict[str, list[str]]] = {}
    for output in outputs:
        if not output:
            continue
        first = next(iter(p for paths in output.values() for p in paths), None)
        if first and str(Path(first).parent) in by_dir:
            known[by_dir[str(Path(first).parent)]] = dict(output)
    return known


def stage_steps(plan: ReductionPlan, stage: str, outputs: Iterable[Mapping[str, list[str]] | None] = ()
                ) -> tuple[list[dict[str, Any]], list[str]]:
    """EsorexOperator kwargs of every step of ``stage`` whose inputs exist, and why the others cannot run.

    ``outputs`` are the XComs of every earlier step that ran; a step whose upstream failed is left out
    (with its reason) so that one failed IFU or exposure stops only what depends on it.
    """
    known = products_by_step(plan, outputs)
    runnable, blocked = [], []
    for step in plan.by_stage(stage):
        missing = [dep for dep in step.depends_on if dep not in known]
        if missing:
            blocked.append(f"{step.name}: not run, {', '.join(missing)} did not finish")
            continue
        runnable.append(step.operator_kwargs(known))
    return runnable, blocked


def unfinished_steps(plan: ReductionPlan, outputs: Iterable[Mapping[str, list[str]] | None]) -> list[str]:
    """Names of the planned steps that published no products (failed, or blocked by a failed upstream).

    A step switched off in the config (``execute: false``) with nothing to hand on is not counted: the
    user asked for it not to run; the steps that needed its products are.

    The DAG's last task uses this so that a run with any failed recipe ends failed, while every branch
    that could finish still did (the per-stage collectors run on ALL_DONE and would otherwise be the
    run's successful leaves).
    """
    known = products_by_step(plan, outputs)
    return [step.name for step in plan.steps if step.name not in known and step.execute]
