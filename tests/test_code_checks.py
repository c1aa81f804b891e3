"""Lint and type check as part of the test suite, so CI (which runs exactly the README's test command) fails on them.

Settings live in pyproject.toml ([tool.ruff], [tool.mypy]): ruff over every Python file of the repository,
mypy over the package, the DAGs and the benchmarks (the tests are linted, not type-checked: they are
written against pytest fixtures and astropy/numpy values whose annotations would only add casts).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOOLS = Path(sys.executable).parent  # ruff and mypy are pinned in requirements.txt, installed in the same venv


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    result = _run([str(TOOLS / "ruff"), "check", "--no-cache", "plugins", "dags", "tests", "benchmarks"])
    assert result.returncode == 0, f"ruff (settings in pyproject.toml):\n{result.stdout}{result.stderr}"


def test_mypy_finds_nothing_in_the_package_dags_and_benchmarks():
    result = _run([str(TOOLS / "mypy"), "--no-incremental", "--cache-dir", "/dev/null",
                   "plugins/muse_operators", "dags", "benchmarks"])
    assert result.returncode == 0, f"mypy (settings in pyproject.toml):\n{result.stdout}{result.stderr}"
