"""One output directory per run configuration, so that two configs never overwrite each other's products.

A reduction writes into ``<output_dir>/<run name>/`` (``calibrations/``, ``reduced/<OB>/...``,
``plan.json``). The run name is the user's (``run_name``) or ``run-<id>``, where the id hashes every
setting that changes a product. Settings that only say *whether* or *how fast* steps run
(``execute``/``create_sof`` switches, ``cleanup``, ``n_CPU``, ``reuse_products``) are left out of the
id on purpose: switching a stage off must find the products of the earlier run with it switched on.
``OB_list`` is left out too unless ``dither_multiple_OBs`` combines the listed OBs into one pointing: which
OBs a run reduces does not change any one OB's products, so per-OB runs of the same config (the nightly
DAG starts one per OB) share one directory and the night's calibrations in it.

``run-config.json`` in the directory records the settings; a different config under the same run name is
refused with the settings that differ, instead of silently mixing two reductions.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .atomic_write import write_text_atomically
from .errors import MuseAirflowError

RECORD = "run-config.json"
_RUN_SWITCHES = {"execute", "execute_std", "execute_sci", "create_sof"}
_NOT_PRODUCT_SETTINGS = {("global", "n_CPU"), ("global", "reuse_products"), ("global", "rootpath"),
                         ("global", "recipe_timeout_minutes"),
                         ("global", "pipeline_path")}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")


class RunDirectoryError(MuseAirflowError, ValueError):
    """The run directory belongs to another configuration, or the run name is unusable."""


def product_settings(config: Mapping[str, Any], ifus: Sequence[int] | None = None) -> dict[str, Any]:
    """The settings that decide what the products are (see the module docstring), plus the IFU choice."""
    kept: dict[str, Any] = {}
    for section, values in sorted(config.items()):
        if section == "cleanup" or not isinstance(values, Mapping):
            continue
        kept[section] = {key: value for key, value in sorted(values.items())
                         if key not in _RUN_SWITCHES and (section, key) not in _NOT_PRODUCT_SETTINGS}
    global_ = kept.get("global", {})
    if not global_.get("dither_multiple_OBs"):
        global_.pop("OB_list", None)
    kept["ifus"] = sorted(ifus) if ifus else "all"
    return kept


def run_id(config: Mapping[str, Any], ifus: Sequence[int] | None = None) -> str:
    text = json.dumps(product_settings(config, ifus), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    out: list[str] = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} there, {b!r} now")
    return out


def run_directory(output_dir: str | os.PathLike[str], config: Mapping[str, Any], ifus: Sequence[int] | None = None,
                  run_name: str | None = None) -> Path:
    """Create (or re-open) the run's directory under ``output_dir`` and return it."""
    settings = json.loads(json.dumps(product_settings(config, ifus), default=str))  # as stored in JSON
    name = run_name or f"run-{run_id(config, ifus)}"
    if not _SAFE_NAME.match(name):
        raise RunDirectoryError(f"run_name {name!r}: use letters, digits, '.', '_', '+' or '-' (at most 100, not "
                                "starting with a symbol)")
    directory = Path(output_dir).absolute() / name
    record = directory / RECORD
    if record.is_file():
        try:
            earlier = json.loads(record.read_text()).get("settings", {})
        except ValueError:
            earlier = None
        if earlier != settings:
            changed = _differences(earlier or {}, settings)
            raise RunDirectoryError(
                f"{directory} holds a reduction made with other settings ({'; '.join(changed[:8]) or 'unreadable '}"
                f"{RECORD}); choose another run_name (or leave it empty: every config gets its own directory)")
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    write_text_atomically(record, json.dumps({"settings": settings, "config": dict(config)}, indent=2,
                                             sort_keys=True, default=str))
    return directory
