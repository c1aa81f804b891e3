"""The trigger form of the reduction DAG, generated from ``config/schema.json`` and ``config/defaults.json``.

Every config key becomes one form field named ``<section>__<key>`` (Airflow Param names must be
identifiers), grouped in the UI by section, with the schema's type, enum, bounds and description and the
default from defaults.json, so the UI offers exactly what the config file offers and a new schema key
appears in the form without touching the DAG. No Airflow import here: the DAG turns :func:`form_fields`
into Params; :func:`config_from_form` turns the submitted values back into a nested config.

Precedence when a run also gets a whole ``config`` object (a MUSEreduce file pasted in, or the REST
API): the object is the base, and a form field overrides it only where the field differs from the
default (the form always submits every field, so "differs from the default" is what marks a choice
made in the form).
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .load import deep_merge, read_json
from .paths import defaults_path, schema_path

SEPARATOR = "__"
_FORM_KEYWORDS = ("type", "enum", "minimum", "maximum", "exclusiveMinimum", "pattern", "items", "minLength", "anyOf",
                  "oneOf")
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}


@dataclass(frozen=True)
class FormField:
    name: str  # <section>__<key>
    section: str
    key: str
    default: Any
    schema: dict[str, Any]  # JSON-schema keywords Airflow's Param accepts
    description: str


def _resolve(node: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """The node with ``$ref`` into ``$defs`` inlined (its own keys win) and ``oneOf`` of types flattened."""
    node = dict(node)
    ref = node.pop("$ref", None)
    if ref:
        node = {**defs[ref.rsplit("/", 1)[-1]], **node}
    alternatives = node.get("oneOf") or node.get("anyOf")
    if alternatives and "type" not in node:  # the form needs a type to pick a widget; validation keeps anyOf
        types = []
        for alt in (_resolve(a, defs) for a in alternatives):
            kind = alt.get("type") or _JSON_TYPES.get(type(alt.get("const")))
            if isinstance(kind, str) and kind not in types:
                types.append(kind)
        if types:
            node["type"] = types[0] if len(types) == 1 else types
    return node


def form_fields() -> list[FormField]:
    """One field per config key, in schema order."""
    schema = read_json(schema_path())
    defaults = read_json(defaults_path())
    defs = schema.get("$defs", {})
    fields = []
    for section, section_schema in schema["properties"].items():
        if section.startswith("$"):
            continue
        for key, key_schema in section_schema.get("properties", {}).items():
            resolved = _resolve(key_schema, defs)
            fields.append(FormField(
                name=f"{section}{SEPARATOR}{key}", section=section, key=key,
                default=copy.deepcopy(defaults.get(section, {}).get(key, resolved.get("default"))),
                schema={k: resolved[k] for k in _FORM_KEYWORDS if k in resolved},
                description=resolved.get("description", ""),
            ))
    return fields


def config_from_form(params: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The nested config: ``base`` (a whole config object, may be empty) + the form fields that were changed."""
    changed: dict[str, dict[str, Any]] = {}
    for field in form_fields():
        if field.name in params and params[field.name] != field.default:
            changed.setdefault(field.section, {})[field.key] = params[field.name]
    return deep_merge(dict(base or {}), changed)
