"""The CeleryExecutor docker-compose.yaml, end to end: build the images (Airflow, PostgreSQL, Redis, all
from the offline Debian base), bring the stack up with two workers, log in through the REST API, trigger
muse_reduce on a three-IFU bias set, wait for success, and find one master bias per IFU on the host,
made by tasks that ran on both workers.

Needs a Docker engine, the esorex image (scripts/setup.sh) and docker-compose (v1 ``docker-compose`` or
the v2 ``docker compose`` plugin). All traffic goes to 127.0.0.1. The stack is always torn down with
``down -v`` (its named volume included), whether the test passed or not.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from muse_operators.synthetic.raw_frames import write_bias_set

from .airflow_services import free_port

pytestmark = pytest.mark.compose

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yaml"
DOCKER_SOCKET = Path("/var/run/docker.sock")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BUILD_CA_BUNDLE = REPO / "build" / "docker-ca" / "ca-certificates.crt"  # gitignored (/build/)
AIRFLOW_UID = 50000
ADMIN_USER = "muse-admin"

HEALTH_TIMEOUT = 300  # s, stack up -> API healthy and the DAG parsed
RUN_TIMEOUT = 600  # s, trigger -> run finished
WORKERS = 2


def compose_command() -> list[str]:
    """``docker-compose`` (v1) if installed, else the v2 plugin ``docker compose``."""
    v1 = shutil.which("docker-compose")
    return [v1] if v1 else ["docker", "compose"]


class Api:
    """Minimal JSON client for the Airflow REST API on localhost."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.token: str | None = None

    def request(self, method: str, path: str, body: Any = None, timeout: float = 20) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")


def wait_for(what: str, check, timeout: float, interval: float = 3) -> Any:
    """Call ``check()`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
            last = result
        except (OSError, urllib.error.URLError) as exc:  # not listening yet, connection reset, ...
            last = exc
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The shared data directory, mounted at the same absolute path in the Airflow container."""
    data = (tmp_path / "muse-data").resolve()
    data.mkdir()
    data.chmod(0o755)
    return data


@pytest.fixture
def stack(data_dir: Path) -> Iterator[dict[str, Any]]:
    """Build and start the compose stack; always ``down -v`` afterwards."""
    if not DOCKER_SOCKET.is_socket():
        pytest.fail(f"{DOCKER_SOCKET} missing: a Docker engine is needed (scripts/setup.sh)")
    if HOST_CA_BUNDLE.is_file():  # pip in the build may need it (TLS-intercepting network); optional
        BUILD_CA_BUNDLE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HOST_CA_BUNDLE, BUILD_CA_BUNDLE)
    port = free_port()
    password = secrets.token_urlsafe(16)
    env = {
        **os.environ,
        "MUSE_DATA_DIR": str(data_dir),
        "MUSE_AIRFLOW_ADMIN_USER": ADMIN_USER,
        "MUSE_AIRFLOW_ADMIN_PASSWORD": password,
        "MUSE_AIRFLOW_PORT": str(port),
        "DOCKER_GID": str(DOCKER_SOCKET.stat().st_gid),
        "MUSE_DB_PASSWORD": secrets.token_urlsafe(16),
        "MUSE_REDIS_PASSWORD": secrets.token_urlsafe(16),
        "MUSE_JWT_SECRET": secrets.token_urlsafe(32),
        "MUSE_POSTGRES_PORT": str(free_port()),
        "MUSE_REDIS_PORT": str(free_port()),
        "MUSE_WORKER_CONCURRENCY": "1",  # so that concurrent tasks must spread over both workers
        "MUSE_OMP_NUM_THREADS": "1",
    }
    compose = [*compose_command(), "-f", str(COMPOSE_FILE), "-p", f"muse-compose-test-{os.getpid()}"]
    timings: dict[str, float] = {}

    def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([*compose, *args], env=env, cwd=REPO, capture_output=True, text=True,
                              timeout=timeout)

    try:
        started = time.monotonic()
        built = run("build", timeout=1800)
        timings["image build"] = time.monotonic() - started
        assert built.returncode == 0, f"compose build failed:\n{built.stdout[-4000:]}\n{built.stderr[-4000:]}"
        started = time.monotonic()
        up = run("up", "-d", "--scale", f"worker={WORKERS}")
        assert up.returncode == 0, f"compose up failed:\n{up.stdout[-4000:]}\n{up.stderr[-4000:]}"
        yield {"api": Api(port), "user": ADMIN_USER, "password": password, "timings": timings,
               "started": started, "logs": lambda: run("logs", "--tail=200").stdout}
    finally:
        down = run("down", "-v", "--remove-orphans", timeout=300)
        if down.returncode != 0:
            print(f"compose down failed:\n{down.stdout}\n{down.stderr}", file=sys.stderr)


def test_muse_reduce_through_the_celery_stack(stack: dict[str, Any], data_dir: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    api: Api = stack["api"]
    timings: dict[str, float] = stack["timings"]

    raw_dir = data_dir / "raw"
    raw_dir.mkdir()
    raw_dir.chmod(0o755)
    raws = write_bias_set(raw_dir, [1, 2, 3], count=3, seed=1)
    for path in raws:
        path.chmod(0o444)
    products = data_dir / "products"  # staging directories are created beside the output directory
    products.mkdir()
    if os.geteuid() == 0:
        os.chown(products, AIRFLOW_UID, AIRFLOW_UID)
        products.chmod(0o755)
    else:
        products.chmod(0o777)

    def healthy() -> bool:
        status, body = api.request("GET", "/api/v2/monitor/health")
        return status == 200 and all(
            (body.get(part) or {}).get("status") == "healthy" for part in ("metadatabase", "scheduler"))

    wait_for("the API health endpoint (scheduler healthy)", healthy, HEALTH_TIMEOUT)

    status, body = api.request("POST", "/auth/token", {"username": stack["user"], "password": stack["password"]})
    assert status == 201, f"login failed: {status} {body}"
    api.token = body["access_token"]
    wrong = Api(api.port)  # no token
    status, _ = wrong.request("POST", "/auth/token", {"username": stack["user"], "password": "not-the-password"})
    assert status == 401, f"a wrong password was not rejected: {status}"
    status, _ = wrong.request("GET", "/api/v2/dags")
    assert status == 401, f"the API answered without a token: {status}"

    wait_for("the muse_reduce DAG to be parsed", lambda: api.request("GET", "/api/v2/dags/muse_reduce")[0] == 200,
             HEALTH_TIMEOUT - (time.monotonic() - stack["started"]) + 60)
    timings["stack up"] = time.monotonic() - stack["started"]

    status, body = api.request("PATCH", "/api/v2/dags/muse_reduce", {"is_paused": False})
    assert status == 200 and body["is_paused"] is False, f"unpause failed: {status} {body}"

    conf = {"raw_dir": str(raw_dir), "output_dir": str(products), "ifus": [1, 2, 3],
            "config": {"global": {"using_ESO_Calibration": False}}}
    started = time.monotonic()
    status, body = api.request("POST", "/api/v2/dags/muse_reduce/dagRuns", {"logical_date": None, "conf": conf})
    assert status == 200, f"trigger failed: {status} {body}"
    run_id = body["dag_run_id"]
    run_path = f"/api/v2/dags/muse_reduce/dagRuns/{urllib.request.quote(run_id, safe='')}"

    def finished() -> str | None:
        state = api.request("GET", run_path)[1]["state"]
        return state if state in ("success", "failed") else None

    state = wait_for(f"dag run {run_id}", finished, RUN_TIMEOUT, interval=5)
    timings["run"] = time.monotonic() - started
    _, listing = api.request("GET", f"{run_path}/taskInstances?limit=100")
    instances = listing["task_instances"]
    if state != "success":
        failed = [t for t in instances if t["state"] not in ("success", "skipped")]
        logs = [api.request("GET", f"{run_path}/taskInstances/{t['task_id']}/logs/{t['try_number']}"
                                   f"?full_content=true&map_index={t['map_index']}")[1] for t in failed[:2]]
        pytest.fail(f"run {run_id} ended {state}; failed: {failed}\ntask logs: {json.dumps(logs)[-6000:]}\n"
                    f"compose logs:\n{stack['logs']()[-4000:]}")

    masters = sorted(products.glob("run-*/calibrations/**/MASTER_BIAS*.fits"))
    assert len(masters) == 3, f"expected one MASTER_BIAS per IFU, found {masters}"
    bias_hosts = {t["hostname"] for t in instances if t["task_id"] == "bias"}
    all_hosts = {t["hostname"] for t in instances if t["hostname"]}
    assert len([t for t in instances if t["task_id"] == "bias"]) == 3
    assert len(all_hosts) == WORKERS, f"tasks ran on {all_hosts}, expected {WORKERS} workers"
    with capsys.disabled():
        print("\ncompose timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
              + f"; bias tasks on {sorted(bias_hosts)}")
