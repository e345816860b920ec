"""Parameters declared once: default, constraint and one-line doc, in one place per method.

A method's parameters are a :class:`Params` of named :class:`Param` entries (and nested
``Params`` for sections such as Ada-NETS's ``gcn``).  The constraint of each is a JSON-schema
fragment, so one declaration gives three things that can no longer disagree:

- the config schema of the method's experiment block (:meth:`Params.json_schema`), which
  the workflow validates before any work starts;
- validation at the door of the Python API (:meth:`Params.resolve`, the same schema);
- the resolved settings, defaults included, that the workflow hashes into artifact names,
  so that changing a default in code renames what depends on it.

The helpers (``number``, ``integer``, ``choice``, ``auto_or``, ...) write the fragments;
they play the part of scikit-learn's ``_parameter_constraints`` (``Interval``, ``StrOptions``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Iterator


class ParamError(ValueError):
    """Settings that break a declared constraint; the message names the key."""


@dataclass(frozen=True)
class Param:
    """One parameter: its ``default``, its constraint as a JSON-schema fragment, a doc line."""

    default: Any
    schema: dict
    doc: str


# ------------------------------------------------------------------ constraint helpers
def number(minimum: float | None = None, maximum: float | None = None, *,
           exclusive_minimum: float | None = None, exclusive_maximum: float | None = None
           ) -> dict:
    """A real number, optionally bounded (inclusive ``minimum``/``maximum``, or exclusive)."""
    out: dict = {"type": "number"}
    for key, value in (("minimum", minimum), ("maximum", maximum),
                       ("exclusiveMinimum", exclusive_minimum),
                       ("exclusiveMaximum", exclusive_maximum)):
        if value is not None:
            out[key] = value
    return out


def integer(minimum: int | None = None, maximum: int | None = None) -> dict:
    """An integer, optionally bounded (inclusive)."""
    out: dict = {"type": "integer"}
    if minimum is not None:
        out["minimum"] = minimum
    if maximum is not None:
        out["maximum"] = maximum
    return out


def boolean() -> dict:
    return {"type": "boolean"}


def choice(*values) -> dict:
    """One of ``values``."""
    return {"enum": list(values)}


def auto_or(schema: dict) -> dict:
    """``schema``, or the string ``auto`` (chosen on labeled training data)."""
    return {"oneOf": [schema, {"const": "auto"}]}


def nullable(schema: dict) -> dict:
    """``schema``, or null."""
    return {"oneOf": [schema, {"type": "null"}]}


def any_object() -> dict:
    return {"type": "object"}


# ------------------------------------------------------------------ the declaration
class Params:
    """An ordered set of named parameters and sections (nested ``Params``).

    ``Params(beta=Param(0.5, number(exclusive_minimum=0), "β of Eq. 3"), gcn=GCN_PARAMS)``
    """

    def __init__(self, **entries: Param | "Params"):
        for name, entry in entries.items():
            if not isinstance(entry, (Param, Params)):
                raise TypeError(f"parameter {name!r} must be a Param or Params, "
                                f"not {type(entry).__name__}")
        self.entries: dict[str, Param | Params] = dict(entries)

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def __getitem__(self, name: str) -> Param | "Params":
        return self.entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def with_entries(self, **entries: Param | "Params") -> "Params":
        """A copy with ``entries`` added or replaced (order kept, new ones last)."""
        return Params(**{**self.entries, **entries})

    def without(self, *names: str) -> "Params":
        return Params(**{k: v for k, v in self.entries.items() if k not in names})

    def defaults(self) -> dict:
        """Every default, sections included, as a fresh nested dict."""
        return {name: entry.defaults() if isinstance(entry, Params)
                else copy.deepcopy(entry.default) for name, entry in self.entries.items()}

    def json_schema(self, partial: bool = False) -> dict:
        """The JSON schema of a settings dict: no unknown keys, every value constrained.

        Sections may be given partly (their missing keys take defaults); ``partial`` is
        used for nested sections and override blocks."""
        props = {}
        for name, entry in self.entries.items():
            if isinstance(entry, Params):
                props[name] = entry.json_schema(partial=True)
            else:
                props[name] = {**entry.schema, "description": entry.doc}
        return {"type": "object", "additionalProperties": False, "properties": props}

    def validate(self, values: dict, where: str = "") -> None:
        """Raise :class:`ParamError` naming the first key of ``values`` that breaks the
        schema (``where`` prefixes the key, e.g. ``experiments.adanets``)."""
        import jsonschema

        if not isinstance(values, dict):
            raise ParamError(f"{where or 'settings'}: expected a mapping of parameters, "
                             f"got {type(values).__name__}")
        validator = jsonschema.Draft202012Validator(self.json_schema())
        errors = sorted(validator.iter_errors(values), key=lambda e: list(map(str, e.path)))
        if errors:
            err = errors[0]
            key = ".".join([where] * bool(where) + [str(p) for p in err.path])
            if err.validator == "additionalProperties":
                known = sorted(self._section(list(err.path)).entries)
                unknown = sorted(set(err.instance) - set(known))
                raise ParamError(f"{key or 'settings'}: unknown setting "
                                 f"{', '.join(map(repr, unknown))} (known: {', '.join(known)})")
            if err.validator == "oneOf":  # say what each alternative wanted
                raise ParamError(f"{key}: {err.instance!r} is not valid: expected "
                                 + " or ".join(_describe(s) for s in err.schema["oneOf"]))
            raise ParamError(f"{key}: {err.message}")

    def _section(self, path: list) -> "Params":
        node: Params = self
        for name in path:
            entry = node.entries.get(str(name))
            if not isinstance(entry, Params):
                break
            node = entry
        return node

    def resolve(self, values: dict | None = None, where: str = "") -> dict:
        """Validated ``values`` over the defaults (sections merged key by key): the
        resolved settings.  Raises :class:`ParamError` on an unknown key or a bad value."""
        values = {} if values is None else values
        self.validate(values, where)
        return self._merge(values)

    def _merge(self, values: dict) -> dict:
        out = {}
        for name, entry in self.entries.items():
            if isinstance(entry, Params):
                out[name] = entry._merge(values.get(name) or {})
            else:
                out[name] = copy.deepcopy(values[name]) if name in values else \
                    copy.deepcopy(entry.default)
        return out

    def docs(self, prefix: str = "") -> list[tuple[str, Any, str]]:
        """``(dotted key, default, doc)`` of every parameter, sections expanded."""
        rows = []
        for name, entry in self.entries.items():
            if isinstance(entry, Params):
                rows += entry.docs(f"{prefix}{name}.")
            else:
                rows.append((f"{prefix}{name}", entry.default, entry.doc))
        return rows


def _describe(schema: dict) -> str:
    if "const" in schema:
        return repr(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(map(repr, schema["enum"]))
    kind = schema.get("type", "a value")
    bounds = [f"{op} {schema[key]}" for key, op in (("minimum", "≥"), ("maximum", "≤"),
                                                   ("exclusiveMinimum", ">"),
                                                   ("exclusiveMaximum", "<")) if key in schema]
    return f"a {kind}" + (f" {' and '.join(bounds)}" if bounds else "")
