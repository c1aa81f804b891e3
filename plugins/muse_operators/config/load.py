"""Loading a user's config: read, rename MUSEreduce spellings, merge over the defaults, check everything.

The order matters and is why this is one function: aliases are renamed *before* merging (so an old
spelling is not shadowed by a default), values are checked *after* merging (so the checks see exactly
what will run), and every check runs even when an earlier one failed, so the user gets one list of
all problems.
"""
from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..recipe_params import ParamValue, RecipeCatalog
from . import paths
from .aliases import apply_aliases
from .consistency import consistency_problems
from .errors import ConfigError
from .recipe_checks import direct_problems, get_path, kwargs_problems, recipe_parameters, snapshot_catalog
from .recipe_keys import ESOREX_KWARGS, is_empty_kwargs
from .validate import load_schema, schema_problems

ConfigSource = str | os.PathLike[str] | Mapping[str, Any] | None


class Config(dict):
    """The merged, canonical, validated configuration: a plain dict (JSON-serialisable, XCom-safe).

    ``notes`` records every renaming of a MUSEreduce spelling, ``warnings`` legal but suspicious
    combinations, ``source`` where it came from. These attributes are not part of the dict, so
    ``json.dumps(config)`` gives exactly the settings.
    """

    def __init__(self, data: Mapping[str, Any], source: str = "", notes: list[str] | None = None,
                 warnings: list[str] | None = None) -> None:
        super().__init__(data)
        self.source = source
        self.notes: list[str] = list(notes or [])
        self.warnings: list[str] = list(warnings or [])

    def get_path(self, path: str) -> Any:
        """The value of ``"section.key"``, e.g. ``config.get_path("sky.fraction")``."""
        return get_path(self, path)

    def omp_num_threads(self, available: int | None = None) -> int:
        """``global.n_CPU`` as a valid OMP_NUM_THREADS value (``-1`` -> all cores available)."""
        return omp_num_threads(self["global"]["n_CPU"], available)

    def recipe_parameters(self, recipe: str, catalog: RecipeCatalog | None = None) -> dict[str, ParamValue]:
        """The recipe parameters this config sets for ``recipe`` (direct settings + esorex_kwargs)."""
        return recipe_parameters(self, recipe, catalog or snapshot_catalog(paths.recipe_snapshot_path()))


def available_cores() -> int:
    """Cores this process may use (respects CPU affinity/cgroup cpusets where the OS reports them)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def omp_num_threads(n_cpu: int, available: int | None = None) -> int:
    """MUSEreduce's ``n_CPU`` as an OMP_NUM_THREADS value: -1 means all cores (OpenMP has no '-1')."""
    if n_cpu == -1:
        return available if available is not None else available_cores()
    if isinstance(n_cpu, bool) or not isinstance(n_cpu, int) or n_cpu < 1:
        raise ConfigError([f"global.n_CPU = {n_cpu!r}: use -1 (all cores) or a whole number >= 1"])
    return n_cpu


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``: objects merge key by key, anything else (lists too) replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json object hook: a key given twice is an error (json would silently keep the last one)."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ConfigError([f"key {key!r} is given twice in the same object; keep one"])
        result[key] = value
    return result


def read_json(path: Path) -> Any:
    """A JSON file, with errors that name the file, line and column."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError([f"cannot read the config file: {exc.strerror or exc}"], source=str(path)) from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise ConfigError([f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"],
                          source=str(path)) from None
    except ConfigError as exc:
        raise ConfigError(exc.problems, source=str(path)) from None


def _user_settings(source: ConfigSource) -> tuple[dict[str, Any], str]:
    if source is None:
        return {}, "(defaults)"
    if isinstance(source, Mapping):
        return copy.deepcopy(dict(source)), "(dict)"
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"load_config takes a JSON file path, a mapping or None, not {type(source).__name__}")
    path = Path(source)
    data = read_json(path)
    if not isinstance(data, dict):
        raise ConfigError([f"the file must hold one JSON object of sections, not {type(data).__name__}"],
                          source=str(path))
    return data, str(path)


def _normalise(config: dict[str, Any], notes: list[str]) -> None:
    """Spellings with one meaning in MUSEreduce that would otherwise fail the schema or mislead."""
    section = config.get("sci_post")
    if isinstance(section, dict) and "autocalib" in section and section["autocalib"] is None:
        section["autocalib"] = "none"
        notes.append("sci_post.autocalib = null taken as \"none\" (MUSEreduce 1.3's default; it then "
                     "still added SKY_MASK, which muse-airflow does not)")
    for path in ESOREX_KWARGS:
        name, key = path.split(".", 1)
        section = config.get(name)
        if isinstance(section, dict) and key in section and is_empty_kwargs(section[key]):
            section[key] = ""  # None and 'none' mean "no extra options", stored as ""


def load_config(source: ConfigSource = None, *, catalog: RecipeCatalog | None = None) -> Config:
    """Load, rename, merge and check a configuration; raise ConfigError listing every problem.

    ``source``: a path to a JSON file, a mapping (e.g. an Airflow DAG run's conf), or None for the
    defaults alone. ``catalog``: the recipe parameter lists to check against (the esorex image's, from
    ``esorex_image.recipe_catalog``); default: the snapshot in ``config/recipe_params/``.
    """
    user, origin = _user_settings(source)
    renamed = apply_aliases(user)
    problems = list(renamed.problems)
    notes = list(renamed.notes)
    _normalise(renamed.config, notes)
    defaults = read_json(paths.defaults_path())
    merged = deep_merge(defaults, renamed.config)

    schema = load_schema(paths.schema_path())
    found, bad_paths = schema_problems(merged, schema)
    problems += found
    catalog = catalog or snapshot_catalog(paths.recipe_snapshot_path())
    if all(isinstance(merged.get(s), dict) for s in schema["properties"] if s != "$schema"):
        problems += kwargs_problems(merged, catalog, bad_paths)
        problems += direct_problems(merged, catalog, bad_paths)
        cross, warnings = consistency_problems(merged, bad_paths)
        problems += cross
    else:  # a section is missing its object: later checks would only repeat the schema's message
        warnings = []
    if problems:
        raise ConfigError(problems, source=origin)
    return Config(merged, source=origin, notes=notes, warnings=warnings)
