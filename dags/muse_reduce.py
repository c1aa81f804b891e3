"""Reduce a pool of raw MUSE frames: triggered from the UI with a raw and an output directory.

Nothing is read at parse time: the plan is made inside the ``plan`` task (written to
``<output_dir>/<run>/plan.json``, one run directory per config, its path passed on) and every stage
expands from it with dynamic task mapping, one task instance per recipe call (per calibration set and
IFU, or per set with ``global.ifu_tasks = merged``). A step identical to one that finished before hands
on its recorded products (muse_operators.step_record); why stages are mapped tasks and not mapped task
groups: docs/architecture.md. Between stages a small
``<stage>_inputs`` task resolves each step's product inputs from the earlier stages' mapped XComs (no
collector task per stage: ~1 s of scheduling each); a step whose upstream failed is not run, so a
failure stops only what depends on it.
Stages (muse_operators.plan.STAGES): bias -> dark -> flat -> wavecal -> lsf -> twilight -> scibasic ->
standard -> create_sky -> [sky_zero -> sky_refit -> sky_lines, with sky.modified] -> scipost -> exp_align ->
exp_combine; a stage with nothing to do is skipped. After ``verify`` (fails the run if a step did not
finish) comes ``cleanup`` (the config's clean-up section). sky_zero and sky_lines are Python steps (astropy, in
the worker), the rest esorex recipes in the esorex image.
Headers are read through the cached header index ($MUSE_HEADER_INDEX, default
$AIRFLOW_HOME/muse_header_index.sqlite), so re-planning an unchanged archive costs well under a second.
"""
from __future__ import annotations

from typing import Any, NoReturn

import pendulum
from airflow.sdk import DAG, Param, task
from airflow.sdk import TriggerRule

from muse_operators.config.form import form_fields
from muse_operators.failures import recipe_retry_settings
from muse_operators.operators.esorex import EsorexOperator
from muse_operators.plan import PYTHON_STAGES, STAGES

# Infrastructure faults (daemon, killed container) are retried, data errors never (muse_operators.failures).
RECIPE_RETRIES = recipe_retry_settings()

# The trigger form: every config key of config/schema.json as a field, grouped by section (package files,
# not data: reading them at parse time costs milliseconds).
CONFIG_FIELDS = {field.name: Param(field.default, description=field.description, section=f"config: {field.section}",
                                   **field.schema) for field in form_fields()}

DOC = """
### Reduce raw MUSE frames

Fill in **raw_dir** and **output_dir**; every other field is optional (empty = the default of
`config/defaults.json`, or what a pasted `config` object says). Then press *Trigger*.

* **ESO master calibrations or your own?** `global.using_ESO_Calibration` is **on** by default: the raw
  directory must then hold ESO's processed masters (MASTER_BIAS, MASTER_FLAT, TRACE_TABLE, WAVECAL_TABLE,
  ... as the archive delivers them with "processed calibrations"). If it holds only raw calibrations, switch
  it **off** (section *config: global*) and the masters are made from the raw biases, flats and arcs.
* **See the plan before you run it:** on the machine that runs Airflow,
  `muse-airflow plan RAW_DIR OUTPUT_DIR [--config my.json]` prints every recipe call, the calibrations
  chosen for each exposure and why, and every problem, without starting anything.
* A run whose plan has errors fails in its `plan` task, which lists them; nothing else runs.
  A run ends failed if any planned recipe did not finish (`verify` names them); trigger it again
  after fixing the cause and only the unfinished branches run.

Products: `<output_dir>/<run_name or run-HASH>/`, one directory per config (README: *Where products land*).
"""

with DAG(
    dag_id="muse_reduce",
    description="Reduce raw MUSE frames with the ESO pipeline, one container per recipe call",
    doc_md=DOC,
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=8,
    tags=["muse", "reduction"],
    params={
        "raw_dir": Param("", type="string", minLength=1, description="directory of raw MUSE files (mounted "
                         "read-only). global.using_ESO_Calibration is on by default: the directory must then "
                         "hold ESO's master calibrations; with raw calibrations only, switch it off under "
                         "'config: global' (the plan task names what is missing). Preview: muse-airflow plan"),
        "output_dir": Param("", type="string", minLength=1, description="directory for products: each config "
                            "reduces into its own <output_dir>/<run_name>/"),
        "run_name": Param("", type=["null", "string"], description="name of this config's folder under "
                          "output_dir (empty: run-<hash of the settings that change products>); a name used "
                          "before with other settings is refused"),
        "ifus": Param(None, type=["null", "array"], items={"type": "integer", "minimum": 1, "maximum": 24},
                      description="IFUs to reduce, e.g. [1, 2] (empty: every IFU with data)"),
        "config": Param({}, type=["null", "object"], description="a whole MUSEreduce-style configuration "
                        "(config/schema.json) as the base; the fields below override it where they differ "
                        "from their defaults"),
        **CONFIG_FIELDS,
    },
) as dag:

    @task
    def plan(params: dict | None = None, run_id: str | None = None) -> str:
        """Check the request, plan it, print the plan, write <run dir>/plans/<DAG run>.json; return its path.

        A refused request or plan fails this task alone, with every reason (no retry: it is the input that
        is wrong); the later tasks then end upstream_failed or skipped without messages of their own.
        """
        from airflow.sdk.exceptions import AirflowFailException

        from muse_operators.dag_run import RunRequest, plan_run
        from muse_operators.errors import MuseAirflowError
        from muse_operators.header_index import default_index_path

        assert params is not None
        try:
            request = RunRequest.from_params(params)
            path, reduction = plan_run(request, run_id, default_index_path())
        except MuseAirflowError as exc:
            raise AirflowFailException(str(exc)) from None
        print(f"run directory: {path.parent.parent}")
        print("\n".join(reduction.describe()))
        return str(path)

    def no_plan() -> NoReturn:
        """Skip a bookkeeping task of a run whose plan task failed (its log already says why)."""
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("no plan: the plan task failed, its log says why")

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def stage_inputs(plan_path: str | None, stage: str, *earlier: list | None) -> list[dict]:
        """EsorexOperator kwargs of the stage's runnable steps, inputs resolved from earlier stages' XComs.

        Takes the earlier mapped stages' outputs directly (a failed instance has no XCom and is left out)
        and runs on ALL_DONE, so a failed sibling blocks only the steps that need its products. Skipped
        (not failed) when no step of the stage can run because what they need did not finish: the failure
        is the upstream recipe's, and ``verify`` lists every unfinished step.
        """
        from airflow.sdk import conf
        from airflow.sdk.exceptions import AirflowSkipException

        from muse_operators.dag_run import load_plan, stage_outputs
        from muse_operators.plan import stage_steps

        if plan_path is None:
            no_plan()
        runnable, blocked = stage_steps(load_plan(plan_path), stage, stage_outputs(*earlier))
        for line in blocked:
            print(line)
        if blocked and not runnable:
            raise AirflowSkipException(f"no {stage} step can run: " + "; ".join(blocked))
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
    def verify(plan_path: str | None, *stage_outputs: list) -> dict:
        """Fail the run if any planned step did not finish; list the final products either way."""
        from muse_operators import dag_run
        from muse_operators.plan import unfinished_steps

        if plan_path is None:
            no_plan()
        reduction = dag_run.load_plan(plan_path)
        outputs = dag_run.stage_outputs(*stage_outputs)
        finals = sorted(p for output in outputs for p in output.get("DATACUBE_FINAL", []))
        for cube in finals:
            print(f"DATACUBE_FINAL {cube}")
        missing = unfinished_steps(reduction, outputs)
        if missing:
            raise RuntimeError(f"{len(missing)} of {len(reduction.steps)} planned steps did not finish (see their "
                               "task logs; clear a failed task to re-run only its branch): " + ", ".join(missing))
        return {"steps": len(reduction.steps), "DATACUBE_FINAL": finals}

    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def cleanup(plan_path: str, *stage_outputs: list | None) -> None:
        """The config's clean-up (only after every step finished): remove intermediate products.

        NONE_FAILED, not the default: a stage with nothing to do ends skipped, which must not skip the
        clean-up; a failed recipe or a failed ``verify`` still stops it (upstream_failed).
        """
        from muse_operators import dag_run
        from muse_operators.cleanup import cleanup_targets, remove
        from muse_operators.config import load_config

        reduction = dag_run.load_plan(plan_path)
        config = load_config(reduction.config)
        if not config.get_path("cleanup.execute"):
            print("clean-up: cleanup.execute is false, nothing removed")
            return
        count, freed = remove(cleanup_targets(reduction, dag_run.stage_outputs(*stage_outputs), config))
        print(f"clean-up: removed {count} files/folders, {freed / 1e9:.2f} GB")

    plan_path: Any = plan()  # an XComArg, the plan file's path at run time (what the tasks are typed for)
    earlier: list = []
    for stage in STAGES:
        kwargs = stage_inputs.override(task_id=f"{stage}_inputs")(plan_path, stage, *earlier)
        if stage in PYTHON_STAGES:
            outputs = python_step.override(task_id=stage).expand_kwargs(kwargs)
        else:
            outputs = EsorexOperator.partial(task_id=stage, **RECIPE_RETRIES).expand_kwargs(kwargs).output
        earlier.append(outputs)
    verify(plan_path, *earlier) >> cleanup(plan_path, *earlier)

if __name__ == "__main__":
    dag.test()
