"""The parameter list of every MUSE recipe, as esorex itself reports it, and validation against it.

The esorex image writes ``esorex --create-config=<recipe>.json <recipe>`` for every recipe at build time
(``images/esorex/dump-recipe-params.sh``). That JSON is the single source of truth for which parameters
a recipe has, their types, defaults, ranges and enumerations: config values and ``esorex_kwargs`` are
checked against it before any container starts, so a typo fails in milliseconds with the valid names
instead of minutes later inside esorex (which silently ignores some unknown options).
"""
from __future__ import annotations

import json
import math
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RecipeParameterError

ParamValue = bool | int | float | str


@dataclass(frozen=True)
class RecipeParameter:
    """One recipe parameter: its command-line name (esorex's alias), type and constraints."""

    recipe: str
    name: str
    valtype: str  # "bool" | "int" | "double" | "string"
    default: ParamValue | None
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[ParamValue, ...] = ()

    @classmethod
    def from_esorex_json(cls, entry: Mapping[str, Any]) -> RecipeParameter:
        """Build from one element of esorex's ``--create-config=X.json`` output."""
        return cls(
            recipe=str(entry["recipe"]),
            name=str(entry.get("display_name") or str(entry["name"]).rsplit(".", 1)[-1]),
            valtype=str(entry["valtype"]),
            default=entry.get("value"),
            description=str(entry.get("description", "")),
            minimum=entry.get("valmin"),
            maximum=entry.get("valmax"),
            choices=tuple(entry.get("valenum") or ()),
        )

    def describe(self) -> str:
        """A one-line summary for error messages and ``muse-airflow recipe-params``."""
        extra = ""
        if self.choices:
            extra = " one of " + "|".join(map(str, self.choices))
        elif self.minimum is not None or self.maximum is not None:
            extra = f" in [{self.minimum}, {self.maximum}]"
        return f"--{self.name} ({self.valtype}{extra}, default {self.default!r})"

    def coerce(self, value: Any) -> ParamValue:
        """Return ``value`` as this parameter's type, or raise RecipeParameterError saying why not."""
        where = f"{self.recipe} --{self.name}"
        try:
            converted = _convert(self.valtype, value)
        except (TypeError, ValueError) as exc:
            raise RecipeParameterError(
                f"{where}: {value!r} is not a valid {self.valtype} ({exc}); expected {self.describe()}"
            ) from None
        if self.choices and converted not in self.choices:
            raise RecipeParameterError(
                f"{where}: {value!r} is not allowed; choose one of {', '.join(map(str, self.choices))}"
            )
        if isinstance(converted, (int, float)) and not isinstance(converted, bool):
            if self.minimum is not None and converted < self.minimum:
                raise RecipeParameterError(f"{where}: {value!r} is below the minimum {self.minimum}")
            if self.maximum is not None and converted > self.maximum:
                raise RecipeParameterError(f"{where}: {value!r} is above the maximum {self.maximum}")
        return converted


def _convert(valtype: str, value: Any) -> ParamValue:
    if valtype == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"true", "t", "1", "yes"}:
            return True
        if text in {"false", "f", "0", "no"}:
            return False
        raise ValueError("use true or false")
    if valtype == "int":
        if isinstance(value, bool):
            raise ValueError("a boolean is not an integer")
        if isinstance(value, float) and not value.is_integer():
            raise ValueError("not a whole number")
        return int(str(value).strip()) if not isinstance(value, (int, float)) else int(value)
    if valtype == "double":
        if isinstance(value, bool):
            raise ValueError("a boolean is not a number")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError("not a finite number")
        return number
    if valtype == "string":
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ValueError("expected a text value")
        text = str(value)
        if any(ch in text for ch in "\n\r\0"):
            raise ValueError("control characters are not allowed")
        return text
    raise ValueError(f"unknown esorex value type {valtype!r}")


def format_value(value: ParamValue) -> str:
    """esorex's spelling of a value on the command line (booleans as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return repr(value)  # keep "5.0" so esorex sees a double
    return str(value)


@dataclass
class RecipeCatalog:
    """Every recipe of one esorex image and its parameters: ``catalog["muse_bias"]["nifu"]``."""

    recipes: dict[str, dict[str, RecipeParameter]] = field(default_factory=dict)
    source: str = ""

    @classmethod
    def from_entries(
        cls, entries: Iterable[Mapping[str, Any]], source: str = "", recipe_names: Iterable[str] = ()
    ) -> RecipeCatalog:
        """Build from esorex JSON entries; ``recipe_names`` adds recipes that have no parameters."""
        catalog = cls(source=source, recipes={name: {} for name in recipe_names})
        for entry in entries:
            parameter = RecipeParameter.from_esorex_json(entry)
            catalog.recipes.setdefault(parameter.recipe, {})[parameter.name] = parameter
        return catalog

    @classmethod
    def from_directory(cls, directory: Path) -> RecipeCatalog:
        """Read ``<recipe>.json`` files as written by ``dump-recipe-params.sh``."""
        entries: list[Mapping[str, Any]] = []
        files = sorted(Path(directory).glob("muse_*.json"))
        if not files:
            raise FileNotFoundError(f"no muse_*.json recipe parameter files in {directory}")
        for path in files:
            entries.extend(json.loads(path.read_text()))
        return cls.from_entries(entries, source=str(directory), recipe_names=[p.stem for p in files])

    @classmethod
    def from_snapshot(cls, path: Path) -> RecipeCatalog:
        """Read a combined snapshot written by :meth:`to_snapshot` (``config/recipe_params/*.json``)."""
        data = json.loads(Path(path).read_text())
        return cls.from_entries(data["parameters"], source=str(path), recipe_names=data.get("recipes", ()))

    def to_snapshot(self) -> dict[str, Any]:
        """A JSON-serialisable form, stable in order, in esorex's own field names."""
        parameters = []
        for recipe in sorted(self.recipes):
            for parameter in self.recipes[recipe].values():
                entry: dict[str, Any] = {
                    "recipe": recipe,
                    "display_name": parameter.name,
                    "name": f"muse.{recipe}.{parameter.name}",
                    "valtype": parameter.valtype,
                    "value": parameter.default,
                    "description": parameter.description,
                }
                if parameter.minimum is not None:
                    entry["valmin"] = parameter.minimum
                if parameter.maximum is not None:
                    entry["valmax"] = parameter.maximum
                if parameter.choices:
                    entry["valenum"] = list(parameter.choices)
                parameters.append(entry)
        return {"recipes": sorted(self.recipes), "parameters": parameters}

    def parameters_of(self, recipe: str) -> dict[str, RecipeParameter]:
        if recipe not in self.recipes:
            raise RecipeParameterError(
                f"recipe {recipe!r} is not in the esorex image ({self.source or 'unknown source'}); "
                f"available recipes: {', '.join(sorted(self.recipes))}"
            )
        return self.recipes[recipe]

    def validate(self, recipe: str, parameters: Mapping[str, Any]) -> dict[str, ParamValue]:
        """Check every parameter name and value against the recipe; return the coerced values.

        All problems are collected into one error so a user fixes a config in one go.
        """
        known = self.parameters_of(recipe)
        problems: list[str] = []
        coerced: dict[str, ParamValue] = {}
        for name, value in parameters.items():
            key = str(name).lstrip("-")
            if key not in known:
                problems.append(f"recipe {recipe} has no parameter {name!r}")
                continue
            try:
                coerced[key] = known[key].coerce(value)
            except RecipeParameterError as exc:
                problems.append(str(exc))
        if problems:
            valid = "\n  ".join(p.describe() for p in known.values())
            raise RecipeParameterError(
                "; ".join(problems) + f"\nvalid parameters of {recipe}:\n  {valid}"
            )
        return coerced

    def command_line(self, recipe: str, parameters: Mapping[str, Any]) -> list[str]:
        """Validated ``--name=value`` arguments, in the given order."""
        return [f"--{name}={format_value(value)}" for name, value in self.validate(recipe, parameters).items()]


def parse_esorex_kwargs(text: str, setting: str = "esorex_kwargs") -> dict[str, str]:
    """Split a MUSEreduce-style ``esorex_kwargs`` string (``"--nifu=1 --merge=true"``) into a mapping.

    The string is tokenised like a POSIX shell would (quotes allowed) but never executed; anything that
    is not ``--name=value`` or a bare ``--flag`` (meaning ``true``) is rejected, naming ``setting``.
    """
    try:
        tokens = shlex.split(text or "")
    except ValueError as exc:
        raise RecipeParameterError(f"{setting}: cannot split {text!r}: {exc}") from None
    parsed: dict[str, str] = {}
    for token in tokens:
        if not token.startswith("--") or len(token) < 3:
            raise RecipeParameterError(
                f"{setting}: {token!r} is not a recipe option; write options as --name=value"
            )
        name, sep, value = token[2:].partition("=")
        parsed[name] = value if sep else "true"
    return parsed
