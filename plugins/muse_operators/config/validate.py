"""Schema validation whose messages a user can act on: the setting's path, the bad value, what is allowed.

jsonschema's own messages ("Additional properties are not allowed ('skyrejct' was unexpected)") name
neither where the key is nor what it should be. Here every error becomes one sentence such as
``sci_basic.skyrejct: unknown setting; did you mean 'skyreject'?`` or
``global.mode = "WFM" is not allowed (not one of the choices); allowed: one of "WFM-NOAO", ...``,
and all errors are collected, not just the first.
"""
from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from .aliases import alias_table

_JSON_KIND = {bool: "true/false", int: "a number", float: "a number", str: "a string",
              list: "a list", dict: "an object", type(None): "null"}
_TYPE_WORDS = {"boolean": "true or false", "integer": "a whole number", "number": "a number",
               "string": "a string", "array": "a list", "object": "an object (a section of settings)",
               "null": "null"}


@lru_cache(maxsize=4)
def _load_schema_cached(path: str, mtime_ns: int) -> dict[str, Any]:
    schema = json.loads(Path(path).read_text())
    Draft202012Validator.check_schema(schema)  # a broken schema is a packaging fault: fail loudly
    return schema


def load_schema(path: Path) -> dict[str, Any]:
    """The schema at ``path``, checked against the 2020-12 meta-schema; re-read when the file changes."""
    return _load_schema_cached(str(path), Path(path).stat().st_mtime_ns)


def format_path(parts: Iterable[Any]) -> str:
    """``["global", "OB_list", 0]`` -> ``global.OB_list[0]`` (the spelling used in every message)."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def show(value: Any) -> str:
    """A value as the user wrote it in JSON (``true``, ``null``, ``"x"``)."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    """``node`` with a local ``$ref`` merged in (the node's own keywords win)."""
    merged = dict(node)
    ref = merged.pop("$ref", None)
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        merged = {**_resolve(target, root), **merged}
    return merged


def schema_at(root: Mapping[str, Any], parts: Sequence[Any]) -> dict[str, Any]:
    """The (resolved) sub-schema that governs the value at ``parts``; {} if there is none."""
    node = _resolve(root, root)
    for part in parts:
        if isinstance(part, int):
            node = _resolve(node.get("items", {}), root)
        else:
            node = _resolve(node.get("properties", {}).get(part, {}), root)
    return node


def describe_allowed(node: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    """A short human description of the values ``node`` allows."""
    node = _resolve(node, root)
    if "x-allowed" in node:
        return str(node["x-allowed"])
    if "enum" in node:
        return "one of " + ", ".join(show(v) for v in node["enum"])
    if "const" in node:
        text = show(node["const"])
        return f"{text} ({node['description']})" if "description" in node else text
    if "anyOf" in node:
        return " or ".join(describe_allowed(branch, root) for branch in node["anyOf"])
    kind = node.get("type")
    words = _TYPE_WORDS.get(kind, "a value") if isinstance(kind, str) else "a value"
    bounds = [f"{op} {node[key]}" for key, op in (("minimum", ">="), ("exclusiveMinimum", ">"),
                                                   ("maximum", "<="), ("exclusiveMaximum", "<"))
              if key in node]
    if bounds:
        words += " " + " and ".join(bounds)
    if kind == "array" and "items" in node:
        words += " of " + describe_allowed(node["items"], root)
    return words


def _closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``word`` ignoring case (difflib), or None if nothing is close."""
    by_lower = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[match[0]] if match else None


def _unknown_key_message(parts: Sequence[Any], key: str, root: Mapping[str, Any]) -> str:
    """Message for a key the schema does not know, with the most likely intended key."""
    sections = [s for s in root["properties"] if s != "$schema"]
    if not parts:  # an unknown section
        guess = _closest(key, sections)
        hint = f"did you mean '{guess}'? " if guess else ""
        return f"{key}: unknown section; {hint}sections are: {', '.join(sections)}"
    section = str(parts[0])
    valid = list(schema_at(root, parts).get("properties", {}))
    here = format_path([*parts, key])
    # The key exists, spelled exactly (ignoring case), in another section: it was put in the wrong place.
    for other in sections:
        if other != section:
            for name in schema_at(root, [other]).get("properties", {}):
                if name.lower() == key.lower():
                    return f"{here}: not a setting of '{section}'; it belongs in {other}.{name}"
    # Close to a valid key, or to a MUSEreduce spelling of one (suggest its canonical name).
    aliases = {old.split(".", 1)[1]: new for old, new in alias_table().items() if old.startswith(section + ".")}
    guess = _closest(key, [*valid, *aliases])
    if guess in aliases:
        guess = aliases[guess].split(".", 1)[1] if aliases[guess].startswith(section + ".") else aliases[guess]
    hint = f"did you mean '{guess}'? " if guess else ""
    return f"{here}: unknown setting; {hint}valid settings of {section}: {', '.join(valid)}"


def _bad_value_message(error: ValidationError, root: Mapping[str, Any]) -> str:
    parts = list(error.absolute_path)
    node = schema_at(root, parts)
    value = error.instance
    if error.validator == "type":
        reason = f"it is {_JSON_KIND.get(type(value), type(value).__name__)}"
    elif error.validator == "enum":
        reason = "not one of the choices"
    elif error.validator in ("const", "anyOf"):
        reason = "outside the allowed values"
    elif error.validator == "pattern":
        reason = "wrong format"
    else:
        reason = error.message
    message = f"{format_path(parts)} = {show(value)} is not allowed ({reason}); allowed: {describe_allowed(node, root)}"
    if error.validator == "enum" and isinstance(value, str):
        guess = _closest(value, [str(v) for v in node.get("enum", ())])
        if guess:
            message += f"; did you mean {show(guess)}?"
    return message


def schema_problems(config: Mapping[str, Any], schema: Mapping[str, Any]) -> tuple[list[str], set[str]]:
    """Every schema violation of ``config`` as a message, and the set of paths that are wrong.

    The paths let later checks (recipe parameters, cross-checks) skip values already reported.
    """
    problems: list[str] = []
    bad_paths: set[str] = set()
    order = {name: index for index, name in enumerate(schema.get("properties", {}))}

    def document_order(error: ValidationError) -> tuple[int, list[str]]:
        parts = [str(p) for p in error.absolute_path]
        return (order.get(parts[0], len(order)) if parts else -1, parts)

    errors = sorted(Draft202012Validator(schema).iter_errors(config), key=document_order)
    for error in errors:
        parts = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = set(schema_at(schema, parts).get("properties", {}))
            for key in error.instance:
                if key not in known:
                    problems.append(_unknown_key_message(parts, str(key), schema))
                    bad_paths.add(format_path([*parts, key]))
            continue
        path = format_path(parts)
        if path in bad_paths:  # one message per setting is enough
            continue
        bad_paths.add(path)
        problems.append(_bad_value_message(error, schema))
    return problems, bad_paths
