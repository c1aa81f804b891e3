"""MUSEreduce's other spellings of config keys, and how they are renamed to the canonical ones.

MUSEreduce's documentation and its code disagree on several key names and sections (the docs say
``global.using_ESO_Calibration``, the code reads ``calibration.using_ESO_calibration``), and the docs
contain typos (``scrmin``). Existing config files use the code's spellings, because only those worked.
So both are accepted: each alias below is renamed to one canonical key on load, with a note the user
can read (``Config.notes``). Giving an alias *and* its canonical key with different values is an
error, because there is no way to know which one was meant.

Canonical names follow the seed documentation, except where the documentation contradicts its own
rule that "keywords directly controlling toggles of the pipeline are named identically" (``skyreject``,
``srcmin``, ``srcmax`` are the recipe parameter names, so the docs' ``sky_reject``/``scrmin``/``scrmax``
are the aliases).
"""
from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Alias:
    """``old`` (a MUSEreduce spelling, "section.key") is renamed to ``new``; ``note`` says where it comes from."""

    old: str
    new: str
    note: str


ALIASES: tuple[Alias, ...] = (
    Alias("sci_basic.sky_reject", "sci_basic.skyreject",
          "MUSEreduce docs spelling; its code and config.json read 'skyreject', the muse_scibasic parameter"),
    Alias("exp_align.scrmin", "exp_align.srcmin",
          "typo in MUSEreduce docs; its code reads 'srcmin', the muse_exp_align parameter"),
    Alias("exp_align.scrmax", "exp_align.srcmax",
          "typo in MUSEreduce docs; its code reads 'srcmax', the muse_exp_align parameter"),
    Alias("calibration.using_ESO_calibration", "global.using_ESO_Calibration",
          "MUSEreduce code and config.json read it from the calibration section (lower-case 'c')"),
    Alias("global.using_ESO_calibration", "global.using_ESO_Calibration",
          "MUSEreduce code spelling (lower-case 'c') placed in the documented section"),
    Alias("calibration.renew_statics", "global.renew_statics",
          "MUSEreduce code and config.json read it from the calibration section"),
    Alias("global.auto_create_OB_list", "global.auto_create_OB_folders",
          "MUSEreduce 1.3 (Update_2.8.9 branch) code name of the documented auto_create_OB_folders"),
    Alias("dither_collect.user_list", "global.exp_list",
          "MUSEreduce code and config.json read the exposure list as dither_collect.user_list"),
    Alias("sky.skyfield", "sky.sky_field",
          "spelling used in the prose of MUSEreduce's docs; the code reads 'sky_field'"),
)

#: MUSEreduce master's single-OB key. There, ``OB_list`` became ``[OB]`` unless dither_multiple_OBs,
#: in which case ``OB`` named the pointing folder. muse-airflow finds OBs from the OBS NAME header.
OB_KEY = "global.OB"


@dataclass
class AliasResult:
    """The renamed config, a note per renaming, and the conflicts that make it unusable."""

    config: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def alias_table() -> dict[str, str]:
    """``{old path: new path}`` for documentation and key suggestions."""
    return {alias.old: alias.new for alias in ALIASES}


def _js(value: Any) -> str:
    """A value in JSON spelling, as the user wrote it (``false``, not ``False``)."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same JSON kind (so ``1`` and ``true`` do not count as the same value)."""
    return type(a) is type(b) and a == b


def apply_aliases(raw: Mapping[str, Any]) -> AliasResult:
    """Rename every alias in ``raw`` (which is not modified) to its canonical key."""
    config: dict[str, Any] = copy.deepcopy(dict(raw))
    result = AliasResult(config)
    for alias in ALIASES:
        old_section, old_key = alias.old.split(".", 1)
        section = config.get(old_section)
        if not isinstance(section, dict) or old_key not in section:
            continue
        _move(config, alias, section.pop(old_key), result)
    _convert_ob(config, result)
    return result


def _move(config: dict[str, Any], alias: Alias, value: Any, result: AliasResult) -> None:
    new_section, new_key = alias.new.split(".", 1)
    target = config.setdefault(new_section, {})
    if not isinstance(target, dict):
        result.problems.append(
            f"{alias.old} should move to {alias.new}, but '{new_section}' is not a section "
            f"(it is {_js(target)}); make '{new_section}' an object"
        )
        return
    if new_key in target:
        if _same(target[new_key], value):
            result.notes.append(f"{alias.old} is the same setting as {alias.new} and has the same value; "
                                f"using {alias.new}: {alias.note}")
        else:
            result.problems.append(
                f"{alias.old} = {_js(value)} and {alias.new} = {_js(target[new_key])} are the same setting "
                f"with different values ({alias.old} is an old spelling: {alias.note}); keep only {alias.new}"
            )
        return
    target[new_key] = value
    result.notes.append(f"renamed {alias.old} to {alias.new}: {alias.note}")


def _convert_ob(config: dict[str, Any], result: AliasResult) -> None:
    """MUSEreduce master's ``global.OB``: becomes ``OB_list = [OB]`` where that is what it meant."""
    section_name, key = OB_KEY.split(".", 1)
    section = config.get(section_name)
    if not isinstance(section, dict) or key not in section:
        return
    value = section.pop(key)
    if value in (None, ""):
        result.notes.append(f"dropped the empty {OB_KEY} (MUSEreduce master's single-OB setting)")
        return
    if not isinstance(value, str):
        result.problems.append(f"{OB_KEY} = {_js(value)} must be an OB name (a string); "
                               "better, list the OBs in global.OB_list")
        return
    if section.get("dither_multiple_OBs") is True:
        result.notes.append(
            f"dropped {OB_KEY} = {_js(value)}: with dither_multiple_OBs MUSEreduce used it only as the name "
            "of the pointing folder; the OBs to combine are global.OB_list"
        )
        return
    ob_list = section.get("OB_list")
    if ob_list in (None, []):
        section["OB_list"] = [value]
        result.notes.append(f"renamed {OB_KEY} = {_js(value)} to global.OB_list = [{_js(value)}] "
                            "(MUSEreduce master reduced exactly this OB)")
    elif isinstance(ob_list, list) and value in ob_list:
        result.notes.append(f"dropped {OB_KEY} = {_js(value)}: it is already in global.OB_list")
    else:
        result.problems.append(
            f"{OB_KEY} = {_js(value)} (MUSEreduce master's single OB) disagrees with global.OB_list = {_js(ob_list)}; "
            "remove global.OB and list the OBs to reduce in global.OB_list"
        )
