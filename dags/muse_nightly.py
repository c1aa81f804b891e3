"""Reduce every night without anyone clicking: one muse_reduce run per OB that is complete and new.

Schedule: an observing night is the UTC interval [D 12:00, D+1 12:00) (``muse_operators.nightly``: why UTC
noon); the run for night D starts when that interval has ended, at 12:00 UTC on D+1. ``catchup`` is off,
so unpausing the DAG does not reduce years of archive at once; archival programmes are reduced with
``airflow backfill create --dag-id muse_nightly --from-date … --to-date …`` (one run per night, each
reduced once), restricted with the ``programme``/``target`` Params (``--dag-run-conf``).

Per run:
1. ``survey`` indexes the landing area (incrementally: the header index re-reads only new or changed
   files), groups the science frames into OBs, keeps those of this night and ``lookback_nights`` before,
   and decides for each: ready (all announced exposures there, plan without errors), incomplete (reported
   in the task log and ``<output_dir>/nightly/<night>.json``, tried again by the next runs), or not
   selected by the filters.
2. ``reduce_ob``: one TriggerDagRunOperator per ready OB, mapped. The triggered run's ID carries the OB's
   reduction fingerprint (inputs, settings, image), and ``skip_when_already_exists`` turns a second
   request for an identical reduction into a skipped task: unchanged OBs are never re-reduced, a changed
   input, config or image triggers a new run. Why triggered runs and not Assets: docs/operations.md.
The per-OB runs reduce into one run directory per config and share the night's calibrations (a step
lock in the operators lets the second OB reuse what the first one reduced).
"""
from __future__ import annotations

import os

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, Param, task

LOOKBACK_NIGHTS = 2  # nights before this one whose incomplete OBs are tried again
# Airflow 3.3's Backfill dialog sends its Run Parameters form only when this box is ticked (its label says
# "existing runs", but new runs get no conf without it either): say so whenever a backfill run has no conf.
BACKFILL_FORM = ("in the UI's Backfill dialog tick 'Override parameters on existing runs', else the form's values "
                 "are not sent")
BACKFILL_WITHOUT_CONF = ("this backfill run has no conf: it uses the Params' defaults (the deployment's "
                         "MUSE_LANDING_DIR, MUSE_NIGHTLY_OUTPUT_DIR, the default config); from the CLI pass "
                         f"--dag-run-conf, {BACKFILL_FORM}")

DOC = """
### Every night's complete OBs, each reduced once

Runs by itself at 12:00 UTC for the night that ended (unpause it; `MUSE_LANDING_DIR` and
`MUSE_NIGHTLY_OUTPUT_DIR` set for the scheduler and workers give the directories).

**Backfill from this page:** *Trigger* → *Backfill* → *Date Range* (From = first night, To = last, 12:00
UTC). To give other values than the defaults (directories, `config`, `programme`, `target`), tick
**Override parameters on existing runs**: without it Airflow 3.3 sends none of the form's fields, also
for new runs. Each night's decisions: `<output_dir>/nightly/<night>.json` and the `survey` task's log.
"""

with DAG(
    dag_id="muse_nightly",
    doc_md=DOC,
    description="Every observing night: find the complete, new OBs and start one muse_reduce run for each",
    schedule=CronDataIntervalTimetable("0 12 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2014, 1, 1, 12, tz="UTC"),  # MUSE's first light; backfills may reach back
    catchup=False,
    max_active_runs=1,
    tags=["muse", "nightly"],
    params={
        "landing_dir": Param(os.environ.get("MUSE_LANDING_DIR", ""), type="string",
                             description="the raw landing area (all nights; mounted read-only by the recipes)"),
        "output_dir": Param(os.environ.get("MUSE_NIGHTLY_OUTPUT_DIR", ""), type="string",
                            description="products, one folder per config; night reports in <output_dir>/nightly/"),
        "run_name": Param("", type=["null", "string"], description="folder of the products under output_dir (empty: "
                          "run-<hash of the settings>)"),
        "config": Param({}, type=["null", "object"], description="the reduction config (config/schema.json) every OB "
                        "is reduced with; global.OB_list is set per OB"),
        "ifus": Param(None, type=["null", "array"], items={"type": "integer", "minimum": 1, "maximum": 24},
                      description="IFUs to reduce (null: every IFU with data)"),
        "programme": Param("", type=["null", "string"], description="only OBs of this ESO programme (OBS.PROG.ID; "
                           "shell pattern, e.g. 60.A-9100*; empty: all)"),
        "target": Param("", type=["null", "string"], description="only OBs of this target (OBS.TARG.NAME or OB name; "
                        "shell pattern; empty: all)"),
        "night": Param("", type=["null", "string"], pattern=r"^(\d{4}-\d{2}-\d{2})?$",
                       description="the observing night to reduce, YYYY-MM-DD (the evening's date) - for manual "
                       "runs; empty: the run's data interval (scheduled runs and backfills)"),
        "lookback_nights": Param(LOOKBACK_NIGHTS, type=["null", "integer"], minimum=0, maximum=60,
                                 description="also consider OBs of this many nights before (incomplete OBs "
                                 f"are retried until they fall out of this window; empty: {LOOKBACK_NIGHTS})"),
    },
) as dag:

    @task
    def survey(params: dict | None = None, data_interval_start=None, dag_run=None) -> list[dict]:
        """Index the landing area and decide per OB; returns the triggers for the ready ones."""
        from muse_operators import python_steps
        from muse_operators.esorex_image import configured_image, inspect_image
        from muse_operators.header_index import HeaderIndex, default_index_path
        from muse_operators.nightly import NightRequest, night_of, survey_night, write_report

        assert params is not None
        if dag_run is not None and str(dag_run.run_type).endswith("backfill") and not dag_run.conf:
            print(f"WARNING {BACKFILL_WITHOUT_CONF}")
        for name, variable in (("landing_dir", "MUSE_LANDING_DIR"), ("output_dir", "MUSE_NIGHTLY_OUTPUT_DIR")):
            if not params.get(name):
                raise ValueError(f"the Param {name} is empty: set ${variable} for the scheduler and workers, or "
                                 f"pass {name} in the run's conf (--dag-run-conf for backfills; {BACKFILL_FORM})")
        if not params.get("night") and data_interval_start is None:
            raise ValueError("this run has no data interval (a manual run without a logical date): name the "
                             "observing night to reduce in the Param night (YYYY-MM-DD)")
        night = params.get("night") or night_of(data_interval_start)
        lookback = params.get("lookback_nights")
        request = NightRequest(params["landing_dir"], params["output_dir"], night, params.get("config") or {},
                               params.get("ifus") or None, LOOKBACK_NIGHTS if lookback is None else int(lookback),
                               params.get("programme") or "",
                               params.get("target") or "", params.get("run_name") or "")
        with HeaderIndex(default_index_path()) as index:
            scan = index.scan(request.landing_dir, with_ifus=True)
        for path, reason in scan.unreadable:
            print(f"WARNING unreadable, not used: {path}: {reason}")
        code_ids = [inspect_image(configured_image())["Id"], python_steps.code_identity()]
        decisions = survey_night(request, scan.frames, code_ids)
        report = write_report(request.output_dir, night, decisions)
        print(f"night {night}: {len(scan.frames)} frames in {request.landing_dir}; report {report}")
        for decision in decisions:
            print(("WARNING " if decision.status == "incomplete" else "") + decision.line()
                  + (f" -> run {decision.run_id}" if decision.run_id else ""))
        if not decisions:
            print(f"night {night}: no science OBs (lookback {request.lookback_nights} nights)")
        return [{"trigger_run_id": d.run_id, "conf": d.conf} for d in decisions if d.status == "ready"]

    TriggerDagRunOperator.partial(
        task_id="reduce_ob",
        trigger_dag_id="muse_reduce",
        skip_when_already_exists=True,  # the same fingerprint was reduced (or is being reduced) already
        wait_for_completion=False,  # each reduction is its own DAG run; nothing to hold a worker slot for
        map_index_template="{{ task.trigger_run_id }}",
    ).expand_kwargs(survey())
