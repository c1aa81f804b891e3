"""The reduction plan: plain, printable, JSON-serialisable steps that the DAG maps over.

The plan is the contract between the domain core and Airflow: a DAG only expands over plan steps and
passes products (by PRO.CATG) between them, so printing the plan shows exactly what will run.

This first version plans the master-bias stage: one ``muse_bias`` step per bias template (grouped by
``ESO TPL START``, as ESO's OCA groups it) and per IFU (``--nifu=N``, products ``MASTER_BIAS-NN``).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .classify import classify
from .headers import RawFrame, scan


@dataclass
class Step:
    """One recipe call: what goes in, with which parameters, and where its products go."""

    name: str
    recipe: str
    sof: list[list[str]]  # [[path, tag], ...]
    output_dir: str
    parameters: dict[str, Any] = field(default_factory=dict)
    expected_products: list[str] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)

    def operator_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of EsorexOperator for this step (used with ``expand_kwargs``)."""
        return {
            "recipe": self.recipe,
            "sof": self.sof,
            "output_dir": self.output_dir,
            "parameters": self.parameters,
            "expected_products": self.expected_products,
        }


@dataclass
class ReductionPlan:
    raw_dir: str
    output_dir: str
    steps: list[Step] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    unclassified: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def by_recipe(self, recipe: str) -> list[Step]:
        return [step for step in self.steps if step.recipe == recipe]


def _set_name(frames: Sequence[RawFrame]) -> str:
    """A calibration set's directory name: its template start, filesystem-safe (``2024-01-01T12-00-00``)."""
    start = frames[0].tpl_start or frames[0].date_obs or "unknown"
    return str(start).replace(":", "-")


def plan_reduction(raw_dir: str | Path, output_dir: str | Path, ifus: Sequence[int] | None = None) -> ReductionPlan:
    """Scan ``raw_dir`` and plan the steps (currently: master biases per template and IFU)."""
    raw = Path(raw_dir).absolute()
    out = Path(output_dir).absolute()
    result = scan(raw, with_ifus=True)
    plan = ReductionPlan(str(raw), str(out), unreadable=result.unreadable)
    templates: dict[str, list[RawFrame]] = {}
    for frame in result.frames:
        tagged = classify(frame)
        if tagged.tag is None:
            plan.unclassified.append((frame.path, tagged.reason))
        elif tagged.tag == "BIAS":
            templates.setdefault(str(frame.tpl_start), []).append(frame)
    for frames in templates.values():
        frames.sort(key=lambda f: (f.mjd_obs or 0.0, f.path))
        present = sorted(set.intersection(*(set(f.ifus) for f in frames)))
        chosen = [i for i in present if ifus is None or i in ifus]
        set_dir = out / "calibrations" / _set_name(frames)
        for ifu in chosen:
            plan.steps.append(
                Step(
                    name=f"muse_bias.{_set_name(frames)}.{ifu:02d}",
                    recipe="muse_bias",
                    sof=[[f.path, "BIAS"] for f in frames],
                    output_dir=str(set_dir / f"ifu{ifu:02d}"),
                    parameters={"nifu": ifu},
                    expected_products=["MASTER_BIAS"],
                )
            )
    return plan
