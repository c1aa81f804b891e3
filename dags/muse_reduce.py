"""Reduce a pool of raw MUSE frames: triggered from the UI with a raw and an output directory.

Nothing is read at parse time: the plan is made inside the ``plan`` task (written to
``<output_dir>/<run>/plan.json``, one run directory per config, its path passed on) and every stage
expands from it with dynamic task mapping, one task instance per recipe call (per calibration set and
IFU, or per set with ``global.ifu_tasks = merged``). A step identical to one that finished before hands
on its recorded products (muse_operators.step_record); why stages are mapped tasks and not mapped task
groups: docs/architecture.md. Between stages a small
``<stage>_inputs`` task resolves each step's product inputs from the earlier tasks' XComs; a step whose
upstream failed is not run, so a failure stops only what depends on it.
Stages (muse_operators.plan.STAGES): bias -> dark -> flat -> wavecal -> lsf -> twilight -> scibasic ->
standard -> create_sky -> [sky_zero -> sky_refit -> sky_lines, with sky.modified] -> scipost -> exp_align ->
exp_combine; a stage with nothing to do is skipped. After ``verify`` (fails the run if a step did not
finish) comes ``cleanup`` (the config's clean-up section). sky_zero and sky_lines are Python steps (astropy, in
the worker), the rest esorex recipes in the esorex image.
Headers are read through the cached header index ($MUSE_HEADER_INDEX, default
$AIRFLOW_HOME/muse_header_index.sqlite), so re-planning an unchanged archive costs well under a second.
"""
from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task
from airflow.sdk import TriggerRule

from muse_operators.config.form import form_fields
from muse_operators.operators.esorex import EsorexOperator
from muse_operators.plan import PYTHON_STAGES, STAGES

# The trigger form: every config key of config/schema.json as a field, grouped by section (package files,
# not data: reading them at parse time costs milliseconds).
CONFIG_FIELDS = {field.name: Param(field.default, description=field.description, section=f"config: {field.section}",
                                   **field.schema) for field in form_fields()}

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
        "output_dir": Param("", type="string", minLength=1, description="directory for products: each config "
                            "reduces into its own <output_dir>/<run_name>/"),
        "run_name": Param("", type="string", description="name of this config's folder under output_dir (empty: "
                          "run-<hash of the settings that change products>); a name used before with other "
                          "settings is refused"),
        "ifus": Param(None, type=["null", "array"], items={"type": "integer", "minimum": 1, "maximum": 24},
                      description="IFUs to reduce (null: every IFU with data)"),
        "config": Param({}, type="object", description="a whole MUSEreduce-style configuration (config/schema.json) "
                        "as the base; the fields below override it where they differ from their defaults"),
        **CONFIG_FIELDS,
    },
) as dag:

    @task
    def plan(params: dict | None = None, run_id: str | None = None) -> str:
        """Scan the raw directory, print the plan, write it to <run dir>/plans/<DAG run>.json; return that path.

        One file per DAG run: per-OB runs of one config (muse_nightly) share the run directory, and each
        run's later tasks must read its own plan. <run dir>/plan.json is a copy of the latest, for people.
        """
        import os
        import re
        import shutil

        from muse_operators.config import load_config
        from muse_operators.config.form import config_from_form
        from muse_operators.header_index import default_index_path
        from muse_operators.planner import plan_reduction
        from muse_operators.run_dir import run_directory

        assert params is not None
        index = default_index_path()
        config = load_config(config_from_form(params, params.get("config") or {}) or None)
        run_dir = run_directory(params["output_dir"], config, params.get("ifus"), params.get("run_name") or None)
        print(f"run directory: {run_dir}")
        reduction = plan_reduction(params["raw_dir"], run_dir, config, params.get("ifus"), index_path=index)
        print("\n".join(reduction.describe()))
        if reduction.errors:
            raise ValueError("the plan has errors:\n" + "\n".join(reduction.errors))
        if not reduction.steps:
            raise ValueError(f"nothing to reduce in {params['raw_dir']}")
        path = run_dir / "plans" / (re.sub(r"[^A-Za-z0-9._+-]", "_", run_id or "manual") + ".json")
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(reduction.to_json())
        tmp.replace(path)
        latest = run_dir / f".plan.json.tmp{os.getpid()}"
        shutil.copyfile(path, latest)
        latest.replace(run_dir / "plan.json")
        return str(path)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def stage_inputs(plan_path: str, stage: str, *earlier: list) -> list[dict]:
        """EsorexOperator kwargs of the stage's runnable steps, inputs resolved from earlier XComs."""
        from pathlib import Path

        from muse_operators.plan import ReductionPlan, stage_steps

        reduction = ReductionPlan.from_json(Path(plan_path).read_text())
        outputs = [output for stage_outputs in earlier for output in (stage_outputs or [])]
        runnable, blocked = stage_steps(reduction, stage, outputs)
        for line in blocked:
            print(line)
        if blocked and not runnable:
            raise RuntimeError(f"no {stage} step can run: " + "; ".join(blocked))
        from airflow.sdk import conf

        limit = conf.getint("core", "max_map_length", fallback=1024)
        if len(runnable) > limit:
            raise RuntimeError(f"stage {stage} has {len(runnable)} recipe calls, more than Airflow's "
                               f"[core] max_map_length = {limit}: reduce fewer exposures or IFUs per run "
                               "(ifus / global.exp_list) or raise AIRFLOW__CORE__MAX_MAP_LENGTH")
        return runnable

    @task
    def python_step(recipe: str, sof: list, output_dir: str, parameters: dict, expected_products: list,
                    reuse: bool = True, run_recipe: bool = True, **_recipe_only: object) -> dict:
        """A plan step that is a Python function (the modified sky), with a recipe's staging and checks."""
        from airflow.sdk.exceptions import AirflowSkipException

        from muse_operators import python_steps
        from muse_operators.step_record import NothingToHandOn

        try:
            return python_steps.run(recipe, sof, output_dir, expected_products, parameters, reuse, run_recipe)
        except NothingToHandOn as exc:
            raise AirflowSkipException(str(exc)) from None

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def collect(outputs: list) -> list:
        """The stage's product maps (failed instances left out), for the stages after it."""
        return [output for output in (outputs or []) if output]

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def verify(plan_path: str, *stage_outputs: list) -> dict:
        """Fail the run if any planned step did not finish; list the final products either way."""
        from pathlib import Path

        from muse_operators.plan import ReductionPlan, unfinished_steps

        reduction = ReductionPlan.from_json(Path(plan_path).read_text())
        outputs = [output for stage in stage_outputs for output in (stage or [])]
        finals = sorted(p for output in outputs for p in output.get("DATACUBE_FINAL", []))
        for cube in finals:
            print(f"DATACUBE_FINAL {cube}")
        missing = unfinished_steps(reduction, outputs)
        if missing:
            raise RuntimeError(f"{len(missing)} of {len(reduction.steps)} planned steps did not finish (see their "
                               "task logs; clear a failed task to re-run only its branch): " + ", ".join(missing))
        return {"steps": len(reduction.steps), "DATACUBE_FINAL": finals}

    @task
    def cleanup(plan_path: str, *stage_outputs: list) -> None:
        """The config's clean-up (only after every step finished): remove intermediate products."""
        from pathlib import Path

        from muse_operators.cleanup import cleanup_targets, remove
        from muse_operators.config import load_config
        from muse_operators.plan import ReductionPlan

        reduction = ReductionPlan.from_json(Path(plan_path).read_text())
        outputs = [output for stage in stage_outputs for output in (stage or [])]
        config = load_config(reduction.config)
        if not config.get_path("cleanup.execute"):
            print("clean-up: cleanup.execute is false, nothing removed")
            return
        count, freed = remove(cleanup_targets(reduction, outputs, config))
        print(f"clean-up: removed {count} files/folders, {freed / 1e9:.2f} GB")

    plan_path = plan()
    earlier: list = []
    for stage in STAGES:
        kwargs = stage_inputs.override(task_id=f"{stage}_inputs")(plan_path, stage, *earlier)
        if stage in PYTHON_STAGES:
            outputs = python_step.override(task_id=stage).expand_kwargs(kwargs)
        else:
            outputs = EsorexOperator.partial(task_id=stage).expand_kwargs(kwargs).output
        earlier.append(collect.override(task_id=f"{stage}_products")(outputs))
    verify(plan_path, *earlier) >> cleanup(plan_path, *earlier)

if __name__ == "__main__":
    dag.test()
