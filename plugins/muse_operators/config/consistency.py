"""Checks that need more than one setting: combinations that cannot work, or that are probably wrong.

Each rule is here because MUSEreduce either failed late on it or silently did something else
(docs/config.md, "MUSEreduce config bugs fixed"). Problems stop the load; warnings are kept in
``Config.warnings`` for the user to read, because the combination is legal but suspicious.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .recipe_checks import is_reported
from .recipe_keys import ESOREX_KWARGS, is_empty_kwargs

AO_MODES = ("WFM-AO", "NFM-AO")


def _ok(bad_paths: set[str], *paths: str) -> bool:
    return not any(is_reported(p, bad_paths) for p in paths)


def consistency_problems(config: Mapping[str, Any], bad_paths: set[str]) -> tuple[list[str], list[str]]:
    """(problems, warnings) of the combinations of settings; values already reported are skipped."""
    problems: list[str] = []
    warnings: list[str] = []
    g = config["global"]

    if _ok(bad_paths, "sci_post.raman", "global.mode") and config["sci_post"]["raman"] and g["mode"] not in AO_MODES:
        problems.append(
            f"sci_post.raman = true needs laser guide stars, but global.mode = \"{g['mode']}\" has none; "
            f"set sci_post.raman to false or global.mode to one of {', '.join(AO_MODES)}"
        )

    if _ok(bad_paths, "exp_align.srcmin", "exp_align.srcmax"):
        srcmin, srcmax = config["exp_align"]["srcmin"], config["exp_align"]["srcmax"]
        if srcmin > srcmax:
            problems.append(f"exp_align.srcmin = {srcmin} is larger than exp_align.srcmax = {srcmax}; "
                            "muse_exp_align needs srcmin <= srcmax")

    if _ok(bad_paths, "global.dither_multiple_OBs", "global.OB_list") and g["dither_multiple_OBs"] and not g["OB_list"]:
        problems.append("global.dither_multiple_OBs = true but global.OB_list is empty; list the OBs "
                        "(by OBS NAME) whose exposures are combined into one pointing")

    if (_ok(bad_paths, "sky.modified", "sky.method") and config["sky"]["modified"]
            and config["sky"]["method"] != "subtract-model"):
        warnings.append(
            f"sky.modified = true with sky.method = \"{config['sky']['method']}\": the modified sky is only "
            "subtracted as measured with \"subtract-model\"; other methods re-fit the sky lines and may give "
            "wrong results"
        )

    if _ok(bad_paths, "global.using_ESO_Calibration") and g["using_ESO_Calibration"]:
        unused = [p for p, _ in ESOREX_KWARGS.items()
                  if p.startswith("calibration.") and _ok(bad_paths, p)
                  and not is_empty_kwargs(config["calibration"][p.split(".", 1)[1]])]
        if unused:
            warnings.append(f"{', '.join(unused)} set, but global.using_ESO_Calibration = true, so the calibration "
                            "recipes do not run and these options are not used")
    return problems, warnings
