"""Dataclass <-> JSON-ready dict, driven by type hints, so each typed object has one shape.

Fields whose metadata has ``transient=True`` (large arrays kept for plots) are left out.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any


def to_jsonable(value: Any) -> Any:
    """Convert dataclasses, numpy scalars and non-finite floats into plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not f.metadata.get("transient")
        }
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()  # numpy scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def from_jsonable(cls: Any, data: Any) -> Any:
    """Rebuild an instance of ``cls`` (a dataclass or typing construct) from ``to_jsonable`` output."""
    if data is None:
        return None
    origin = typing.get_origin(cls)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(cls) if a is not type(None)]
        return from_jsonable(options[0], data) if len(options) == 1 else data
    if origin in (list, tuple):
        if not isinstance(data, (list, tuple)):  # a string would otherwise become a list of characters
            raise TypeError(f"expected a list, found {data!r}")
        (item,) = typing.get_args(cls)[:1] or (Any,)
        return [from_jsonable(item, v) for v in data]
    if origin is dict:
        _, value_type = typing.get_args(cls) or (Any, Any)
        return {k: from_jsonable(value_type, v) for k, v in data.items()}
    if dataclasses.is_dataclass(cls):
        if not isinstance(data, dict):  # '"units": "abc"' must not silently become the defaults
            raise TypeError(f"expected an object for {cls.__name__}, found {data!r}")
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name in data and not f.metadata.get("transient"):
                kwargs[f.name] = from_jsonable(hints[f.name], data[f.name])
        return cls(**kwargs)
    if cls is float:
        return float(data)
    return data
