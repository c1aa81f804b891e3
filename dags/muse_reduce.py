"""Reduce a pool of raw MUSE frames: triggered from the UI with a raw and an output directory.

Nothing is read at parse time: the plan is made inside the ``plan`` task and the recipe tasks expand
from it with dynamic task mapping, one mapped task instance per calibration set and IFU.
Current stages: master bias (see muse_operators.plan for what is planned).
"""
from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task

from muse_operators.operators.esorex import EsorexOperator

with DAG(
    dag_id="muse_reduce",
    description="Reduce raw MUSE frames with the ESO pipeline, one container per recipe call",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=8,
    tags=["muse", "reduction"],
    params={
        "raw_dir": Param("", type="string", minLength=1, description="directory of raw MUSE files (mounted read-only)"),
        "output_dir": Param("", type="string", minLength=1, description="directory for products"),
        "ifus": Param(None, type=["null", "array"], items={"type": "integer", "minimum": 1, "maximum": 24},
                      description="IFUs to reduce (null: every IFU with data)"),
    },
) as dag:

    @task
    def plan(params: dict | None = None) -> list[dict]:
        """Scan the raw directory and return the master-bias steps as EsorexOperator kwargs."""
        from muse_operators.plan import plan_reduction

        assert params is not None
        reduction = plan_reduction(params["raw_dir"], params["output_dir"], params.get("ifus"))
        for path, reason in reduction.unreadable:
            print(f"UNREADABLE {path}: {reason}")
        for path, reason in reduction.unclassified:
            print(f"not used: {path}: {reason}")
        steps = reduction.by_recipe("muse_bias")
        if not steps:
            raise ValueError(
                f"no complete bias template (DPR CATG=CALIB, TYPE=BIAS, TECH=IFU, TPL NEXP>=3) in {params['raw_dir']}"
            )
        return [step.operator_kwargs() for step in steps]

    EsorexOperator.partial(task_id="muse_bias", map_index_template="{{ task.output_dir }}").expand_kwargs(plan())

if __name__ == "__main__":
    dag.test()
