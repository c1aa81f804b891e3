"""Wall time of the muse_reduce DAG against the same recipes run one after another, and its lower bound.

    .venv/bin/python benchmarks/dag_vs_serial.py WORKDIR [--ifus 1,2,3] [--calibrations-only]
        [--exposures 2] [--modes per_ifu,merged] [--parallelism 4] [--threads 2]

For each IFU fan-out (``global.ifu_tasks``: per_ifu = one task per IFU, merged = ``--nifu=-1 --merge``):

* **serial**: the plan's recipe calls one after another in stage order (MUSEreduce's order), each a
  ``docker run`` of the identical argument list, mounts and user that EsorexOperator uses; per call its
  wall time and the machine's busy CPU seconds (``/proc/stat``; run on an otherwise idle machine);
* **DAG**: ``airflow dags test --use-executor`` with LocalExecutor (``--parallelism`` slots) against a
  local ``airflow api-server`` (the execution API the task processes report to), the task instances'
  start/end read from the Airflow database;
* **lower bound** = max(critical path through the plan's dependencies with the serial call times,
  total recipe CPU seconds / cores).

Prints a table and writes ``benchmarks/results/dag_vs_serial.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import time
import urllib.request
from datetime import datetime
from pathlib import Path

from muse_operators import python_steps
from muse_operators.cli import airflow_command, airflow_environment
from muse_operators.esorex_call import build_call, container_user, docker_run_argv
from muse_operators.esorex_image import configured_image, recipe_catalog
from muse_operators.plan import STAGES, ReductionPlan
from muse_operators.planner import plan_reduction
from muse_operators.products import categorise, check_expected, listed_products, publish
from muse_operators.synthetic.night import write_night

HERE = Path(__file__).resolve().parent
API_PORT = 8793


def busy_cpu_seconds() -> float:
    """Busy CPU time of the whole machine (user+nice+system+irq+softirq+steal), in seconds."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + (fields[7] if len(fields) > 7 else 0)
    return busy / os.sysconf("SC_CLK_TCK")


def config_for(mode: str) -> dict:
    return {"global": {"using_ESO_Calibration": False, "ifu_tasks": mode, "reuse_products": False},
            "sky": {"sky_field": "object"}}


def run_serial(raw: Path, out: Path, config: dict, ifus: list[int], threads: int) -> tuple[ReductionPlan, list[dict]]:
    """Every recipe call of the plan, one after another, in stage order."""
    plan = plan_reduction(raw, out, config, ifus)
    if plan.errors:
        raise SystemExit("plan errors:\n" + "\n".join(plan.errors))
    image, user = configured_image(), container_user()
    catalog = recipe_catalog(image)
    products: dict[str, dict[str, list[str]]] = {}
    timings = []
    for step in sorted(plan.steps, key=lambda s: STAGES.index(s.stage)):
        kwargs = step.operator_kwargs(products)
        cpu0, t0 = busy_cpu_seconds(), time.perf_counter()
        if python_steps.is_python_step(step.recipe):
            made = python_steps.run(step.recipe, kwargs["sof"], step.output_dir, step.expected_products,
                                    step.parameters, reuse=False)
        else:
            call = build_call(step.recipe, kwargs["sof"], step.output_dir, step.parameters)
            call.new_staging_dir()
            staging = call.prepare_staging(user)
            subprocess.run(docker_run_argv(call, image, catalog, user, threads), check=True, capture_output=True)
            found = categorise(listed_products(staging, call.products_list_name))
            check_expected(found, step.expected_products, step.recipe)
            made = publish(staging, call.output_dir, found)
        wall, cpu = time.perf_counter() - t0, busy_cpu_seconds() - cpu0
        products[step.name] = made
        timings.append({"step": step.name, "stage": step.stage, "wall_s": wall, "cpu_s": cpu})
        print(f"  serial {step.name}: {wall:.1f} s wall, {cpu:.1f} CPU s", flush=True)
    return plan, timings


def bias_pool(raw: Path, pool: Path) -> Path:
    """A raw pool holding only the night's biases, hard-linked (the originals stay untouched)."""
    manifest = json.loads((raw / "manifest.json").read_text())
    pool.mkdir(exist_ok=True)
    for name in manifest["nights"][0]["calibrations"]["BIAS"]:
        source = next(raw.rglob(name))
        if not (pool / name).exists():
            os.link(source, pool / name)
    return pool


def critical_path(plan: ReductionPlan, seconds: dict[str, float]) -> float:
    finish: dict[str, float] = {}
    for step in sorted(plan.steps, key=lambda s: STAGES.index(s.stage)):
        finish[step.name] = max((finish[d] for d in step.depends_on), default=0.0) + seconds.get(step.name, 0.0)
    return max(finish.values(), default=0.0)


def _wait_for_api(timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://localhost:{API_PORT}/api/v2/monitor/health", timeout=2)
            return
        except OSError:
            time.sleep(1)
    raise SystemExit("airflow api-server did not come up")


def run_dag(work: Path, raw: Path, out: Path, config: dict, ifus: list[int], parallelism: int,
            threads: int) -> dict:
    """muse_reduce under LocalExecutor; wall time and every task instance's span from the database."""
    env = airflow_environment(work / "airflow")
    env.update(AIRFLOW__CORE__EXECUTOR="LocalExecutor", AIRFLOW__CORE__PARALLELISM=str(parallelism),
               AIRFLOW__API_AUTH__JWT_SECRET="benchmark-only", MUSE_OMP_NUM_THREADS=str(threads),
               AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://localhost:{API_PORT}/execution/")
    subprocess.run([*airflow_command(), "db", "migrate"], env=env, check=True, capture_output=True)
    api = subprocess.Popen([*airflow_command(), "api-server", "--port", str(API_PORT)], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for_api()
        conf = {"raw_dir": str(raw), "output_dir": str(out), "ifus": ifus, "config": config}
        t0 = time.perf_counter()
        result = subprocess.run([*airflow_command(), "dags", "test", "muse_reduce", "--use-executor", "-c",
                                 json.dumps(conf)], env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    finally:
        os.killpg(api.pid, signal.SIGINT)
        api.wait(timeout=60)
    if result.returncode != 0:
        raise SystemExit("the DAG run failed:\n" + result.stdout[-4000:])
    db = sqlite3.connect(work / "airflow" / "airflow.db")
    run_id = db.execute("SELECT run_id FROM dag_run WHERE dag_id='muse_reduce' ORDER BY id DESC LIMIT 1").fetchone()[0]
    rows = db.execute("SELECT task_id, map_index, start_date, end_date, state FROM task_instance "
                      "WHERE dag_id='muse_reduce' AND run_id=?", (run_id,)).fetchall()
    spans = [{"task": t, "map_index": m, "seconds": (_time(e) - _time(s)).total_seconds(), "state": st}
             for t, m, s, e, st in rows if s and e]
    starts = [_time(s) for _, _, s, _, _ in rows if s]
    ends = [_time(e) for _, _, _, e, _ in rows if e]
    return {"process_s": wall, "run_s": (max(ends) - min(starts)).total_seconds(), "tasks": spans}


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def summarise(mode: str, plan: ReductionPlan, serial: list[dict], dag: dict, cores: int) -> dict:
    recipe_tasks = [t for t in dag["tasks"] if t["task"] in STAGES and t["state"] == "success"]
    walls = {t["step"]: t["wall_s"] for t in serial}
    serial_s = sum(walls.values())
    cpu_s = sum(t["cpu_s"] for t in serial)
    path_s = critical_path(plan, walls)
    bound = max(path_s, cpu_s / cores)
    return {
        "ifu_tasks": mode, "recipe_calls": len(serial), "serial_s": serial_s, "cpu_s": cpu_s,
        "critical_path_s": path_s, "lower_bound_s": bound, "dag_run_s": dag["run_s"],
        "dag_process_s": dag["process_s"], "dag_recipe_task_s": sum(t["seconds"] for t in recipe_tasks),
        "dag_tasks": len(dag["tasks"]),
        "overhead_per_recipe_task_s": (sum(t["seconds"] for t in recipe_tasks) - serial_s) / max(1, len(recipe_tasks)),
        "dag_over_serial": dag["run_s"] / serial_s, "dag_over_lower_bound": dag["run_s"] / bound,
        "by_stage_serial_s": {stage: sum(t["wall_s"] for t in serial if t["stage"] == stage) for stage in STAGES
                              if any(t["stage"] == stage for t in serial)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--ifus", default="1,2,3")
    parser.add_argument("--exposures", type=int, default=2)
    parser.add_argument("--calibrations-only", action="store_true")
    parser.add_argument("--bias-only", action="store_true",
                        help="reduce only the night's biases (muse_bias is the one recipe that runs merged on a "
                             "night with fewer than 24 IFUs)")
    parser.add_argument("--modes", default="per_ifu,merged")
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="OMP_NUM_THREADS per recipe")
    args = parser.parse_args()
    ifus = [int(x) for x in args.ifus.split(",")]
    work = args.workdir.absolute()
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)
    raw = work / "raw"
    if not (raw / "manifest.json").is_file():
        write_night(raw, ifus, exposures=args.exposures, seed=5, science=not args.calibrations_only)
    if args.bias_only:
        raw = bias_pool(raw, work / "raw-bias")
    cores = os.cpu_count() or 1
    results = []
    for mode in args.modes.split(","):
        config = config_for(mode)
        print(f"[{mode}] serial ...", flush=True)
        plan, serial = run_serial(raw, work / f"serial-{mode}", config, ifus, args.threads)
        print(f"[{mode}] DAG ...", flush=True)
        dag = run_dag(work, raw, work / f"dag-{mode}", config, ifus, args.parallelism, args.threads)
        summary = summarise(mode, plan, serial, dag, cores)
        results.append({"summary": summary, "serial": serial, "dag_tasks": dag["tasks"]})
        print(json.dumps(summary, indent=1), flush=True)
    report = {"machine_cores": cores, "ifus": ifus, "calibrations_only": args.calibrations_only,
              "bias_only": args.bias_only,
              "exposures": args.exposures, "parallelism": args.parallelism, "omp_threads": args.threads,
              "image": configured_image(), "results": results}
    (HERE / "results").mkdir(exist_ok=True)
    name = "dag_vs_serial_bias.json" if args.bias_only else "dag_vs_serial.json"
    (HERE / "results" / name).write_text(json.dumps(report, indent=1) + "\n")
    print("\n| ifu_tasks | calls | serial | DAG | lower bound | DAG/serial | DAG/bound | overhead/task |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        s = r["summary"]
        print(f"| {s['ifu_tasks']} | {s['recipe_calls']} | {s['serial_s']:.0f} s | {s['dag_run_s']:.0f} s | "
              f"{s['lower_bound_s']:.0f} s | {s['dag_over_serial']:.2f} | {s['dag_over_lower_bound']:.2f} | "
              f"{s['overhead_per_recipe_task_s']:+.1f} s |")


if __name__ == "__main__":
    main()
