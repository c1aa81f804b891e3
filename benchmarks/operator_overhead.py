"""Overhead of one EsorexOperator run compared with the same esorex command run directly in the container.

    .venv/bin/python benchmarks/operator_overhead.py [--repeats 5] [--workdir DIR]

Runs muse_bias --nifu=1 on three synthetic 1-IFU biases:
  direct:   ``docker run --rm --network none --user U -v raw:ro -v out esorex-image <the same argv>``
  operator: ``airflow dags test muse_recipe`` (fresh process: DAG parse, SQLite, task, XCom) and, from
            its log, the DagRun's own duration (run_duration), which excludes interpreter start-up, and
            the task's own span: "Task started" -> the operator's last log line ("MASTER_BIAS: ..."), i.e.
            operator work + container + recipe, without Airflow's task start-up.
Prints medians and writes benchmarks/results/operator_overhead.json. Run on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from muse_operators.cli import airflow_command, airflow_environment
from muse_operators.esorex_call import build_call, container_user, docker_run_argv
from muse_operators.esorex_image import configured_image, recipe_catalog
from muse_operators.synthetic.raw_frames import write_bias_set

HERE = Path(__file__).resolve().parent


def direct_run(image: str, raw: list[Path], out: Path, threads: int) -> float:
    call = build_call("muse_bias", [[str(p), "BIAS"] for p in raw], out, {"nifu": 1})
    staging = call.new_staging_dir()
    user = container_user()
    call.prepare_staging(user)
    command = docker_run_argv(call, image, recipe_catalog(image), user, threads)
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    shutil.rmtree(staging)
    return elapsed


def _stamp(log: str, marker: str) -> float:
    """Seconds-of-day of the first log line containing ``marker`` (Airflow's ISO timestamps)."""
    line = next(line for line in log.splitlines() if marker in line and line[:4].isdigit())
    hours, minutes, seconds = line[11:26].split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def operator_run(env: dict[str, str], raw: list[Path], out: Path, threads: int) -> tuple[float, float, float]:
    conf = {"recipe": "muse_bias", "sof": [[str(p), "BIAS"] for p in raw], "parameters": {"nifu": 1},
            "expected_products": ["MASTER_BIAS"], "output_dir": str(out), "omp_num_threads": threads}
    started = time.perf_counter()
    result = subprocess.run([*airflow_command(), "dags", "test", "muse_recipe", "-c", json.dumps(conf)],
                            env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(result.stdout[-3000:])
    found = re.search(r"run_duration=([0-9.]+)", result.stdout)
    if found is None:
        raise RuntimeError("no run_duration in the output of airflow dags test: " + result.stdout[-3000:])
    run_duration = float(found.group(1))
    in_task = _stamp(result.stdout, "MASTER_BIAS: /") - _stamp(result.stdout, "Task started")
    shutil.rmtree(out)
    return elapsed, run_duration, in_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="muse-bench-"))
    work.chmod(0o755)
    raw_dir = work / "raw"
    raw = write_bias_set(raw_dir, [1], count=3, seed=2)
    raw_dir.chmod(0o755)
    env = airflow_environment(work / "airflow")
    subprocess.run([*airflow_command(), "db", "migrate"], env=env, check=True, capture_output=True)
    image = configured_image()
    direct_run(image, raw, work / "warmup", args.threads)  # page cache, image layers

    direct, operator, dagrun, task = [], [], [], []
    for i in range(args.repeats):  # interleaved, so drifts in machine load hit both alike
        direct.append(direct_run(image, raw, work / f"direct{i}", args.threads))
        total, in_run, in_task = operator_run(env, raw, work / f"operator{i}", args.threads)
        operator.append(total)
        dagrun.append(in_run)
        task.append(in_task)
        print(f"run {i + 1}: direct {direct[-1]:.2f} s, airflow dags test {total:.2f} s "
              f"(DagRun {in_run:.2f} s, task {in_task:.2f} s)", flush=True)
    result = {
        "recipe": "muse_bias --nifu=1, 3 raw biases, 1 IFU", "repeats": args.repeats, "omp_threads": args.threads,
        "image": image, "direct_s": direct, "operator_process_s": operator, "operator_dagrun_s": dagrun,
        "operator_task_s": task,
        "median_direct_s": statistics.median(direct),
        "median_operator_process_s": statistics.median(operator),
        "median_operator_dagrun_s": statistics.median(dagrun),
        "median_operator_task_s": statistics.median(task),
    }
    result["overhead_task_s"] = result["median_operator_task_s"] - result["median_direct_s"]
    result["overhead_dagrun_s"] = result["median_operator_dagrun_s"] - result["median_direct_s"]
    result["overhead_process_s"] = result["median_operator_process_s"] - result["median_direct_s"]
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "operator_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k.startswith(("median", "overhead"))}, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
