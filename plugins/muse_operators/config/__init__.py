"""The reduction configuration: MUSEreduce's JSON config, checked before anything runs.

A user's file is read, MUSEreduce's other spellings are renamed to the canonical keys
(:mod:`.aliases`), the result is merged over ``config/defaults.json``, validated against
``config/schema.json`` (:mod:`.validate`), and every value that reaches esorex is checked against the
recipe parameter it becomes (:mod:`.recipe_keys`, :mod:`.recipe_checks`). All problems are reported
together in one :class:`ConfigError`. Pure Python: no Airflow import, so the CLI, the DAG parser and
the tests share it.

    >>> from muse_operators.config import load_config
    >>> config = load_config("my_reduction.json")      # or a dict, or None for the defaults
    >>> config["sky"]["fraction"], config.notes        # canonical keys; what was renamed

``DEFAULTS_PATH`` and ``SCHEMA_PATH`` are evaluated when accessed, so they follow
``$MUSE_AIRFLOW_CONFIG_DIR`` (see :mod:`.paths`).
"""
from __future__ import annotations

from pathlib import Path

from .aliases import ALIASES, Alias, apply_aliases
from .errors import ConfigError
from .load import Config, deep_merge, load_config, omp_num_threads
from .paths import ENV_VAR, config_dir, defaults_path, schema_path
from .recipe_keys import ESOREX_KWARGS, RECIPE_KEYS, RecipeKey

__all__ = [
    "ALIASES", "Alias", "Config", "ConfigError", "DEFAULTS_PATH", "ENV_VAR", "ESOREX_KWARGS", "RECIPE_KEYS",
    "RecipeKey", "SCHEMA_PATH", "apply_aliases", "config_dir", "deep_merge", "defaults_path", "load_config",
    "omp_num_threads", "schema_path",
]


def __getattr__(name: str) -> Path:
    """``DEFAULTS_PATH`` / ``SCHEMA_PATH``, resolved at access time (PEP 562)."""
    if name == "DEFAULTS_PATH":
        return defaults_path()
    if name == "SCHEMA_PATH":
        return schema_path()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
