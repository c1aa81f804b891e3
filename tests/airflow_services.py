"""A real, long-running Airflow on this machine for the scheduled and backfill tests.

``airflow dags test`` runs one DAG run in-process; scheduling, backfills and one DAG triggering another
need the real services. This starts what ``airflow standalone`` starts (api-server, scheduler,
dag-processor, LocalExecutor on SQLite) as separate processes with their logs in files, and stops them
with SIGINT (SIGTERM leaves executor workers behind).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from muse_operators.cli import airflow_command, airflow_environment


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AirflowServices:
    """api-server + scheduler + dag-processor under one AIRFLOW_HOME; the test talks to it by CLI and SQL."""

    def __init__(self, home: Path, extra_env: dict[str, str]) -> None:
        self.home = home
        self.port = free_port()
        self.env = airflow_environment(home)
        self.env.update(
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__CORE__PARALLELISM="4",
            AIRFLOW__API_AUTH__JWT_SECRET=os.urandom(16).hex(),
            AIRFLOW__API__PORT=str(self.port),
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://localhost:{self.port}/execution/",
            AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="10",
            **extra_env,
        )
        self.processes: dict[str, subprocess.Popen] = {}

    def cli(self, *args: str, timeout: float = 120, nothing_written: Callable[[], bool] | None = None,
            attempts: int = 3) -> subprocess.CompletedProcess:
        """Run ``airflow ARGS``; fail with its output if it fails.

        On SQLite a CLI write that meets the scheduler's write fails at once with "database is locked"
        (measured: ``backfill create`` while the scheduler queued runs). Such a command is run again when
        repeating it is harmless: pausing and unpausing always, others when ``nothing_written()`` says the
        failed attempt left nothing behind (its transaction was rolled back).
        """
        idempotent = args[:2] in (("dags", "pause"), ("dags", "unpause"))
        for attempt in range(1, attempts + 1):
            result = subprocess.run([*airflow_command(), *args], env=self.env, capture_output=True, text=True,
                                    timeout=timeout)
            if result.returncode == 0:
                return result
            locked = "database is locked" in result.stdout + result.stderr
            if attempt == attempts or not locked or not (idempotent or (nothing_written and nothing_written())):
                break
            time.sleep(2.0 * attempt)
        raise AssertionError(f"airflow {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")

    def start(self) -> None:
        self.cli("db", "migrate", timeout=300)
        for name, args in (("api-server", ["api-server", "--port", str(self.port)]), ("scheduler", ["scheduler"]),
                           ("dag-processor", ["dag-processor"])):
            log = (self.home / f"{name}.log").open("w")
            self.processes[name] = subprocess.Popen([*airflow_command(), *args], env=self.env, stdout=log,
                                                    stderr=subprocess.STDOUT, start_new_session=True)
        wait_for("the api-server", self._healthy, 180)

    def _healthy(self) -> bool:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"airflow {name} exited:\n{self.log_tail(name)}")
        try:
            urllib.request.urlopen(f"http://localhost:{self.port}/api/v2/monitor/health", timeout=3)
            return True
        except OSError:
            return False

    def log_tail(self, name: str, lines: int = 60) -> str:
        return "\n".join((self.home / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
        for process in self.processes.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def query(self, sql: str, *args: Any) -> list[tuple]:
        db = sqlite3.connect(f"file:{self.home / 'airflow.db'}?mode=ro", uri=True, timeout=30)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def wait_until_parsed(self, dag_ids: list[str], timeout: float = 240) -> None:
        def parsed() -> bool:
            found = {row[0] for row in self.query("SELECT dag_id FROM serialized_dag")}
            return set(dag_ids) <= found
        wait_for(f"the dag-processor to parse {dag_ids}", parsed, timeout)

    def runs(self, dag_id: str) -> dict[str, dict[str, Any]]:
        rows = self.query("SELECT run_id, state, run_type, conf, logical_date FROM dag_run WHERE dag_id = ?", dag_id)
        return {run_id: {"state": state, "run_type": run_type, "conf": _conf(conf), "logical_date": logical}
                for run_id, state, run_type, conf, logical in rows}

    def task_states(self, dag_id: str, run_id: str) -> list[tuple[str, int, str]]:
        return self.query("SELECT task_id, map_index, state FROM task_instance WHERE dag_id = ? AND run_id = ? "
                          "ORDER BY task_id, map_index", dag_id, run_id)

    def task_log(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
        """Every attempt's log of one task instance (mapped: its map index), as the workers wrote it."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder = folder / f"map_index={map_index}"
        return "".join(p.read_text(errors="replace") for p in folder.glob("attempt=*.log"))

    def wait_for_runs(self, dag_id: str, select: Callable[[str, dict], bool], count: int, timeout: float) -> dict:
        """Wait until ``count`` selected runs of ``dag_id`` exist and none of them is queued or running."""
        def finished() -> dict | None:
            chosen = {k: v for k, v in self.runs(dag_id).items() if select(k, v)}
            if len(chosen) >= count and all(v["state"] in ("success", "failed") for v in chosen.values()):
                return chosen
            return None
        return wait_for(f"{count} finished {dag_id} run(s)", finished, timeout,
                        diagnose=lambda: self.log_tail("scheduler"))


def _conf(value: Any) -> Any:
    if isinstance(value, (bytes, str)):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 3,
             diagnose: Callable[[], str] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}"
                         + (f"\n{diagnose()}" if diagnose else ""))
