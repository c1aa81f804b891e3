"""Which config settings become which esorex recipe parameters: the one table, as data.

Two kinds of setting reach esorex:

* **Direct settings** (``RECIPE_KEYS``): a config key whose value becomes one recipe parameter, e.g.
  ``sky.fraction`` -> ``muse_create_sky --fraction``. Their values are checked against the parameter
  they become, with the types, ranges and enumerations esorex itself reports (the recipe parameter
  snapshot or the esorex image's catalog), so a pipeline that changes an enum is noticed on load.
* **Free-form options** (``ESOREX_KWARGS``): MUSEreduce's ``esorex_kwargs*`` strings, which carry any
  other recipe option. Each belongs to exactly one recipe, and each option in it is checked by name and
  value against that recipe.

Settings that change the set of frames rather than a parameter (``sci_post.raman`` adds RAMAN_LINES,
``sci_post.subtract_sky`` adds SKY_LINES/SKY_CONTINUUM, ``calibration.dark`` adds MASTER_DARK,
``sky.sky_field`` chooses the sky exposures) are deliberately not in this table: they are no parameter.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RecipeKey:
    """A config setting that becomes one recipe parameter.

    ``value_map`` translates the config value into the parameter value when they differ in kind
    (``global.withrvcorr`` is a boolean, ``--rvcorr`` a word); values not in the map pass unchanged.
    """

    path: str  # "section.key"
    recipe: str
    parameter: str  # esorex's command-line name, without "--"
    note: str
    value_map: Mapping[Any, Any] = field(default_factory=dict)

    def recipe_value(self, config_value: Any) -> Any:
        """The parameter value this setting's value becomes."""
        try:
            return self.value_map.get(config_value, config_value)
        except TypeError:  # an unhashable (wrong-typed) value: leave it to the checks to report
            return config_value


RECIPE_KEYS: tuple[RecipeKey, ...] = (
    RecipeKey("sci_basic.skyreject", "muse_scibasic", "skyreject",
              "MUSEreduce passed it as --skyreject to the object/sky muse_scibasic run"),
    RecipeKey("sci_basic.skylines", "muse_scibasic", "skylines",
              "MUSEreduce passed it as --skylines to the object/sky muse_scibasic run"),
    RecipeKey("sky.fraction", "muse_create_sky", "fraction",
              "MUSEreduce: muse_create_sky --fraction"),
    RecipeKey("sky.ignore", "muse_create_sky", "ignore",
              "MUSEreduce: muse_create_sky --ignore"),
    RecipeKey("sky.method", "muse_scipost", "skymethod",
              "in the sky section, but it is a muse_scipost option (MUSEreduce never gave it to muse_create_sky)"),
    RecipeKey("sci_post.autocalib", "muse_scipost", "autocalib",
              "muse_scipost --autocalib; 'deepfield' and 'user' also add SKY_MASK (and AUTOCAL_FACTORS) frames"),
    RecipeKey("global.withrvcorr", "muse_scipost", "rvcorr",
              "true -> --rvcorr=bary (the recipe default MUSEreduce relied on), false -> --rvcorr=none",
              value_map={True: "bary", False: "none"}),
    RecipeKey("exp_align.srcmin", "muse_exp_align", "srcmin", "MUSEreduce: muse_exp_align --srcmin"),
    RecipeKey("exp_align.srcmax", "muse_exp_align", "srcmax", "MUSEreduce: muse_exp_align --srcmax"),
    RecipeKey("exp_combine.weight", "muse_exp_combine", "weight", "MUSEreduce: muse_exp_combine --weight"),
)

#: Every ``esorex_kwargs*`` setting and the one recipe its options are given to.
ESOREX_KWARGS: Mapping[str, str] = {
    "calibration.esorex_kwargs_bias": "muse_bias",
    "calibration.esorex_kwargs_dark": "muse_dark",
    "calibration.esorex_kwargs_flat": "muse_flat",
    "calibration.esorex_kwargs_wavecal": "muse_wavecal",
    "calibration.esorex_kwargs_lsf": "muse_lsf",
    "calibration.esorex_kwargs_twilight": "muse_twilight",
    "sci_basic.esorex_kwargs": "muse_scibasic",
    "std_flux.esorex_kwargs": "muse_standard",
    "sky.esorex_kwargs": "muse_create_sky",
    "sci_post.esorex_kwargs": "muse_scipost",
    "exp_align.esorex_kwargs": "muse_exp_align",
    "exp_combine.esorex_kwargs": "muse_exp_combine",
}

#: Values of an ``esorex_kwargs*`` setting that mean "no extra options". MUSEreduce's docs give
#: 'none' as the default, but its code inserted any non-empty string into the esorex command, so a
#: literal 'none' would have reached esorex as a stray argument; here all three mean nothing.
NO_KWARGS = ("", "none")


def keys_for_recipe(recipe: str) -> tuple[RecipeKey, ...]:
    """The direct settings that feed ``recipe``."""
    return tuple(key for key in RECIPE_KEYS if key.recipe == recipe)


def controlling_key(recipe: str, parameter: str) -> RecipeKey | None:
    """The direct setting that owns ``recipe --parameter``, if any (so esorex_kwargs must not set it)."""
    for key in RECIPE_KEYS:
        if key.recipe == recipe and key.parameter == parameter:
            return key
    return None


def is_empty_kwargs(value: Any) -> bool:
    """True for the spellings of "no extra options": None, '', 'none' (any case, any spacing)."""
    return value is None or (isinstance(value, str) and value.strip().lower() in NO_KWARGS)
