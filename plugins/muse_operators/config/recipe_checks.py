"""Checking config values against the recipe parameters they become, before any recipe runs.

esorex accepts some unknown options silently and reports bad values only when a recipe starts, which
in a DAG can be an hour into a run. Each ``esorex_kwargs*`` string and each direct setting
(:data:`~.recipe_keys.RECIPE_KEYS`) is therefore checked on load against esorex's own parameter
lists (``RecipeCatalog``): unknown names are reported with the closest valid name and the recipe's
whole parameter list, bad values with the parameter's type and range.
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import RecipeParameterError
from ..recipe_params import ParamValue, RecipeCatalog, parse_esorex_kwargs
from .recipe_keys import ESOREX_KWARGS, RECIPE_KEYS, controlling_key, is_empty_kwargs
from .validate import show


@lru_cache(maxsize=4)
def _snapshot_catalog(path: str, mtime_ns: int) -> RecipeCatalog:
    return RecipeCatalog.from_snapshot(Path(path))


def snapshot_catalog(path: Path) -> RecipeCatalog:
    """The recipe parameter snapshot at ``path`` (read once per file version)."""
    return _snapshot_catalog(str(path), Path(path).stat().st_mtime_ns)


def get_path(config: Mapping[str, Any], path: str) -> Any:
    """The value at ``"section.key"``; KeyError if a part is missing."""
    section, key = path.split(".", 1)
    return config[section][key]


def is_reported(path: str, bad_paths: set[str]) -> bool:
    """True if ``path`` or a section containing it already failed the schema check."""
    parts = path.split(".")
    return any(".".join(parts[:i]) in bad_paths for i in range(1, len(parts) + 1))


def _valid_list(catalog: RecipeCatalog, recipe: str) -> str:
    return "; valid parameters of {}: {}".format(
        recipe, ", ".join(p.describe() for p in catalog.parameters_of(recipe).values()))


def kwargs_problems(config: Mapping[str, Any], catalog: RecipeCatalog, bad_paths: set[str]) -> list[str]:
    """Problems of every ``esorex_kwargs*`` setting, checked against the recipe it belongs to."""
    problems: list[str] = []
    for path, recipe in ESOREX_KWARGS.items():
        if is_reported(path, bad_paths):
            continue
        text = get_path(config, path)
        if is_empty_kwargs(text):
            continue
        try:
            options = parse_esorex_kwargs(text, setting=path)
            known = catalog.parameters_of(recipe)
        except RecipeParameterError as exc:
            problems.append(str(exc))
            continue
        own: list[str] = []
        checkable: dict[str, str] = {}
        for name, value in options.items():
            owner = controlling_key(recipe, name)
            if name not in known:
                guess = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
                hint = f" (did you mean --{guess[0]}?)" if guess else ""
                own.append(f"recipe {recipe} has no parameter --{name}{hint}")
            elif owner is not None:
                own.append(f"--{name} is set by {owner.path}; change {owner.path} instead of passing it here")
            else:
                checkable[name] = value
        try:
            catalog.validate(recipe, checkable)
        except RecipeParameterError as exc:
            own.append(str(exc).split("\nvalid parameters of", 1)[0])
        if own:
            listing = _valid_list(catalog, recipe) if any("has no parameter" in p for p in own) else ""
            problems.append(f"{path} = {show(text)}: " + "; ".join(own) + listing)
    return problems


def direct_problems(config: Mapping[str, Any], catalog: RecipeCatalog, bad_paths: set[str]) -> list[str]:
    """Problems of the settings that become one recipe parameter (type, range, enumeration)."""
    problems: list[str] = []
    for key in RECIPE_KEYS:
        if is_reported(key.path, bad_paths):
            continue
        value = get_path(config, key.path)
        try:
            catalog.validate(key.recipe, {key.parameter: key.recipe_value(value)})
        except RecipeParameterError as exc:
            reason = str(exc).split("\nvalid parameters of", 1)[0]
            problems.append(f"{key.path} = {show(value)} becomes {key.recipe} --{key.parameter}, "
                            f"which does not accept it: {reason}")
    return problems


def recipe_parameters(config: Mapping[str, Any], recipe: str, catalog: RecipeCatalog) -> dict[str, ParamValue]:
    """What the config says for ``recipe``: its direct settings plus its esorex_kwargs, validated.

    This is only the part the user configures; the workflow adds its own options (e.g. ``--nifu``).
    """
    wanted: dict[str, Any] = {}
    for key in RECIPE_KEYS:
        if key.recipe == recipe:
            wanted[key.parameter] = key.recipe_value(get_path(config, key.path))
    for path, owner in ESOREX_KWARGS.items():
        if owner == recipe and not is_empty_kwargs(get_path(config, path)):
            wanted.update(parse_esorex_kwargs(get_path(config, path), setting=path))
    return catalog.validate(recipe, wanted)
