"""Why a recipe call failed, and whether trying again can help: a data error or an infrastructure fault.

Retrying a data error repeats the same failure (and, at 3 a.m., hides it behind "up for retry" for
minutes); not retrying an infrastructure fault fails a night over a daemon hiccup. The operator asks
:func:`classify_failure` and fails at once (no retry) for data errors, or lets Airflow retry with backoff.

* **data** (no retry): esorex itself ended non-zero (it exits 255 with ``[ ERROR ]`` lines in its log: a bad
  input, a missing calibration, a parameter it refuses), the time limit (a recipe that looped once loops
  again), a recipe that ended 0 without its expected products.
* **infrastructure** (retried): the container was killed by a signal without our time limit (exit 137/143:
  the worker's machine, the OOM killer, someone's ``docker kill``), Docker could not start it (exit 125-127),
  the Docker engine could not be reached or answered with an error.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

DATA = "data"
INFRASTRUCTURE = "infrastructure"

_STATUS = re.compile(r"'StatusCode': (-?\d+)")
_SIGNAL_EXITS = {137: "SIGKILL", 143: "SIGTERM"}  # 128 + signal number, as Docker reports it
_ENGINE_EXITS = {125: "the Docker engine could not run the container", 126: "the command could not be invoked",
                 127: "the command was not found in the image"}
_ENGINE_ERRORS = ("ConnectionError", "APIError", "ReadTimeout", "ConnectTimeout", "ProtocolError", "NotFound",
                  "DockerException")


@dataclass(frozen=True)
class Failure:
    """The kind of a failure (:data:`DATA` or :data:`INFRASTRUCTURE`) and a reason a person can act on."""

    kind: str
    reason: str

    @property
    def retry(self) -> bool:
        return self.kind == INFRASTRUCTURE


def exit_status(message: str) -> int | None:
    """The container's exit status from DockerOperator's ``Docker container failed: {'StatusCode': N, ...}``."""
    found = _STATUS.search(message)
    return int(found.group(1)) if found else None


def classify_failure(exc_type: str, message: str, *, timed_out: bool, esorex_error_logged: bool) -> Failure:
    """Classify a failed container run.

    ``exc_type``/``message``: the exception's class name and text; ``timed_out``: our watchdog stopped it;
    ``esorex_error_logged``: esorex's log holds ``[ ERROR ]`` lines (it ran and judged the input).
    """
    if timed_out:
        return Failure(DATA, "stopped at its time limit")
    status = exit_status(message)
    if status in _SIGNAL_EXITS:
        return Failure(INFRASTRUCTURE, f"container killed by {_SIGNAL_EXITS[status]} (exit {status}), not by its "
                                       "time limit: the machine, the out-of-memory killer or an operator stopped it")
    if status in _ENGINE_EXITS:
        return Failure(INFRASTRUCTURE, f"exit {status}: {_ENGINE_EXITS[status]}")
    if status is not None:
        if esorex_error_logged:
            return Failure(DATA, f"esorex ended with exit {status} and logged its error (below)")
        return Failure(INFRASTRUCTURE, f"exit {status} without an esorex error in its log")
    if exc_type in _ENGINE_ERRORS or "Connection aborted" in message or "docker.sock" in message:
        return Failure(INFRASTRUCTURE, f"the Docker engine failed ({exc_type}: {message}); was it restarted?")
    return Failure(DATA, f"{exc_type}: {message}")


def esorex_logged_an_error(log_tail: str) -> bool:
    """True when esorex's log holds one of its ``[ ERROR ]`` lines."""
    return "[ ERROR ]" in log_tail


def recipe_retry_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Retries of every recipe task (infrastructure faults only): ``MUSE_RECIPE_RETRIES`` (default 2) and
    ``MUSE_RECIPE_RETRY_DELAY_S`` (default 60, doubled per retry up to 10 min), read by the DAG files.

    A bad value raises ValueError naming the variable (the DAG then fails to import with that message).
    """
    env = os.environ if environ is None else environ
    settings = {}
    for name, default in (("MUSE_RECIPE_RETRIES", "2"), ("MUSE_RECIPE_RETRY_DELAY_S", "60")):
        text = env.get(name, default).strip()
        if not text.isdigit():
            raise ValueError(f"{name} = {text!r}: give a whole number >= 0")
        settings[name] = int(text)
    return {"retries": settings["MUSE_RECIPE_RETRIES"],
            "retry_delay": timedelta(seconds=settings["MUSE_RECIPE_RETRY_DELAY_S"]),
            "retry_exponential_backoff": True, "max_retry_delay": timedelta(minutes=10)}
