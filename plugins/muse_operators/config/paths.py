"""Where the configuration files live: ``config/`` of this checkout, or ``$MUSE_AIRFLOW_CONFIG_DIR``.

The schema, the defaults and the recipe parameter snapshot are data files beside the code (not package
data), so they are found relative to this file. The environment variable lets a deployment (e.g. an
Airflow worker image) ship its own copies without patching the package. It is read at call time, so
setting it after import still takes effect.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "MUSE_AIRFLOW_CONFIG_DIR"
PACKAGE_CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"
RECIPE_SNAPSHOT_NAME = "muse-2.8.7-debian.json"  # what the offline esorex image reports (tests, demo)


def config_dir() -> Path:
    """``$MUSE_AIRFLOW_CONFIG_DIR`` if set (and non-empty), else ``<checkout>/config``."""
    override = os.environ.get(ENV_VAR, "").strip()
    return Path(override).expanduser() if override else PACKAGE_CONFIG_DIR


def defaults_path() -> Path:
    """The complete default configuration, canonical key names only."""
    return config_dir() / "defaults.json"


def schema_path() -> Path:
    """The JSON Schema (draft 2020-12) of the whole configuration."""
    return config_dir() / "schema.json"


def recipe_snapshot_path() -> Path:
    """The recipe parameter snapshot used when no esorex image catalog is passed in.

    An override directory need not carry recipe parameter lists: fall back to the checkout's copy.
    """
    candidate = config_dir() / "recipe_params" / RECIPE_SNAPSHOT_NAME
    if candidate.is_file():
        return candidate
    return PACKAGE_CONFIG_DIR / "recipe_params" / RECIPE_SNAPSHOT_NAME
