"""Inputs where leaving a field out differs from giving it as null (a PATCH, a registration).

Such an input is a frozen dataclass with a ``fields_set`` field naming what the caller gave; its
other fields default to None (or empty). ``from_given`` builds one from the loaded body (lists
become tuples, so the record stays immutable) and ``given`` turns it back into the mapping of
the fields given, as the field checks read it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, TypeVar


class PartialInput(Protocol):
    """A dataclass input that records which of its fields were given."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    def __init__(self, **values: Any) -> None: ...

    @property
    def fields_set(self) -> frozenset[str]: ...


P = TypeVar("P", bound=PartialInput)


def from_given(cls: type[P], data: Mapping[str, Any]) -> P:
    """The input of ``cls`` holding exactly the fields of ``data`` (lists as tuples)."""
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values, fields_set=frozenset(data))


def given(data: PartialInput) -> dict[str, Any]:
    """The fields given, by name, in declaration order (tuples as lists, as a loaded body holds them)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(data):  # type: ignore[arg-type]
        if f.name in data.fields_set:
            value = getattr(data, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out
