"""Child-process helper: print the fields of trl config classes as JSON (see workbench.core.schema).

Usage: python -m workbench.train.schema trl:GRPOConfig trl:SFTConfig ...
"""
from __future__ import annotations

import dataclasses
import enum
import importlib
import json
import sys
import types
import typing


def describe(tp) -> dict:
    kinds: list[str] = []
    choices: list = []

    def walk(t):
        origin = typing.get_origin(t)
        if t is type(None):
            kinds.append("null")
        elif origin in (typing.Union, types.UnionType):
            for a in typing.get_args(t):
                walk(a)
        elif origin is typing.Literal:
            choices.extend(typing.get_args(t))
            kinds.append("str")
        elif isinstance(t, type) and issubclass(t, enum.Enum):
            choices.extend(m.value for m in t)
            kinds.append("str")
        elif t is bool:
            kinds.append("bool")
        elif t is int:
            kinds.append("int")
        elif t is float:
            kinds.append("float")
        elif t is str:
            kinds.append("str")
        elif t in (list, tuple) or origin in (list, tuple, typing.List, typing.Tuple):
            kinds.append("list")
        elif t is dict or origin in (dict, typing.Dict):
            kinds.append("dict")
        else:
            kinds.append("any")

    walk(tp)
    out = {"kinds": sorted(set(kinds))}
    if choices:
        out["choices"] = [c for c in dict.fromkeys(choices) if isinstance(c, (str, int, float, bool))]
    return out


def jsonable(v):
    if isinstance(v, enum.Enum):
        return v.value
    try:
        json.dumps(v)
        return v
    except TypeError:
        return repr(v)


def extract(spec: str) -> dict:
    module, name = spec.split(":")
    cls = getattr(importlib.import_module(module), name)
    hints = typing.get_type_hints(cls)
    fields = {}
    for f in dataclasses.fields(cls):
        if not f.init or f.name.startswith("_"):
            continue
        if f.default is not dataclasses.MISSING:
            default = jsonable(f.default)
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = jsonable(f.default_factory())  # type: ignore[misc]
        else:
            default = None
        fields[f.name] = {**describe(hints.get(f.name, typing.Any)), "default": default,
                          "help": " ".join(str(f.metadata.get("help", "")).split())}
    return fields


def main(argv: list[str]) -> int:
    json.dump({spec: extract(spec) for spec in argv}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
