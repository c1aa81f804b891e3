"""The trigger form of the reduction DAG, generated from ``config/schema.json`` and ``config/defaults.json``.

Every config key becomes one form field named ``<section>__<key>`` (Airflow Param names must be
identifiers), grouped in the UI by section, with the schema's type, enum, bounds and description and the
default from defaults.json, so the UI offers exactly what the config file offers and a new schema key
appears in the form without touching the DAG. No Airflow import here: the DAG turns :func:`form_fields`
into Params; :func:`config_from_form` turns the submitted values back into a nested config.

Every field is optional in the form. Airflow's UI treats a Param whose type does not admit ``null`` as
required, and an empty required field disables the Trigger button, so each field's type (and enum) also
admits ``null``: a field left empty or cleared (the UI sends ``null``) means "not set", i.e. the default or
what the pasted ``config`` says. The schema's other checks (types, enums, bounds, patterns) still apply
to every value that is given, and ``load_config`` checks the merged result with its usual messages.

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


def optional(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` that also admits ``null`` (an empty field): in its ``type``, ``enum`` and ``anyOf``/``oneOf``."""
    optional_schema = dict(schema)
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            optional_schema[combinator] = [{"type": "null"}, *schema[combinator]]
    kind = schema.get("type")
    if kind is not None:
        kinds = list(kind) if isinstance(kind, list) else [kind]
        optional_schema["type"] = kinds if "null" in kinds else ["null", *kinds]
    if "enum" in schema and None not in schema["enum"]:
        optional_schema["enum"] = [None, *schema["enum"]]
    return optional_schema


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
                schema=optional({k: resolved[k] for k in _FORM_KEYWORDS if k in resolved}),
                description=resolved.get("description", ""),
            ))
    return fields


def config_from_form(params: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The nested config: ``base`` (a whole config object, may be empty) + the form fields that were changed.

    A field submitted as ``None`` (left empty or cleared in the UI) is not set: the base or the default holds.
    """
    changed: dict[str, dict[str, Any]] = {}
    for field in form_fields():
        if params.get(field.name) is not None and params[field.name] != field.default:
            changed.setdefault(field.section, {})[field.key] = params[field.name]
    return deep_merge(dict(base or {}), changed)
