"""Run one MUSE recipe by hand: recipe, SOF, parameters and output directory from the trigger form.

For re-running a single step with other parameters, or trying a recipe on hand-picked frames. The
task validates the parameters against the image's own list before any container starts.
"""
from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from muse_operators.failures import recipe_retry_settings
from muse_operators.operators.esorex import EsorexOperator

with DAG(
    dag_id="muse_recipe",
    description="Run one ESO MUSE recipe with esorex in the esorex image",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    render_template_as_native_obj=True,  # SOF lists and parameter dicts stay JSON, not strings
    tags=["muse", "esorex"],
    params={
        "recipe": Param("muse_bias", type="string", pattern="^muse_[a-z_]+$", description="recipe name"),
        "sof": Param(
            [],
            type="array",
            minItems=1,
            items={"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
            description='input frames as [["/abs/path.fits", "TAG"], ...]',
        ),
        "parameters": Param({}, type=["null", "object"], description="recipe parameters, e.g. {\"nifu\": 1}"),
        "expected_products": Param([], type=["null", "array"], items={"type": "string"},
                                   description="PRO.CATG that must be written, one per line (empty: none checked)"),
        "output_dir": Param("", type="string", minLength=1, description="absolute directory for the products"),
        "omp_num_threads": Param(None, type=["null", "integer"], minimum=1, description="OpenMP threads (n_CPU)"),
        "timeout_minutes": Param(None, type=["null", "number"], exclusiveMinimum=0,
                                 description="stop the recipe after this many minutes and fail (null: no limit)"),
    },
) as dag:
    EsorexOperator(
        task_id="esorex",
        recipe="{{ params.recipe }}",
        sof="{{ params.sof }}",
        parameters="{{ params.parameters }}",
        expected_products="{{ params.expected_products }}",
        output_dir="{{ params.output_dir }}",
        omp_num_threads="{{ params.omp_num_threads }}",
        timeout_minutes="{{ params.timeout_minutes }}",
        **recipe_retry_settings(),  # infrastructure faults only: data errors fail at once
    )

if __name__ == "__main__":
    dag.test()
