"""Dumping through a marshmallow schema without its per-field machinery, for the hottest outputs.

``compiled(schema)`` reads the schema's dump fields once and returns a function that gives
exactly what ``schema.dump(obj)`` gives for dicts and plain objects: the same keys in the
same order, missing keys left out, ``None`` kept, strings, integers, floats and dicts
converted as marshmallow converts them, nested schemas and lists recursed, and every other
field type (date-times among them) through the field's own ``_serialize``. A schema with
dump hooks, dump defaults or dotted attributes is not compiled: ``schema.dump`` serves it.
``tests/service/cases/test_case_dumping.py`` compares both on every case shape the tests make.

The function is written out as Python source, one statement per field with its conversion
inline (a list of 20 cases is some 150 nested dumps and 4,000 fields), and compiled once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from marshmallow import Schema, fields, missing

from service.common.memo import VersionMemo

Dump = Callable[[Any], Any]
_MISSING = object()


class _Writer:
    """Collects the objects the generated source refers to, under names of its own."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"_MISSING": _MISSING}

    def name(self, obj: Any, prefix: str) -> str:
        key = f"{prefix}{len(self.namespace)}"
        self.namespace[key] = obj
        return key

    def value(self, field: fields.Field, var: str, attribute: str) -> str | None:
        """An expression turning ``var`` (present, maybe None) into output (None: ``var`` as it is)."""
        kind = type(field)
        if kind is fields.String:
            return f"({var} if {var} is None or type({var}) is str else str({var}))"
        if kind is fields.Integer and not field.as_string:
            return f"({var} if {var} is None or type({var}) is int else int({var}))"
        if kind is fields.Float and not field.as_string:
            return f"(None if {var} is None else float({var}))"
        if kind is fields.Boolean or kind is fields.Raw:
            return None
        if kind is fields.Dict and field.key_field is None and field.value_field is None:
            return f"(None if {var} is None else dict({var}))"
        if kind is fields.DateTime:
            # As ``DateTime._serialize``: the format's function (schemas/__init__.py sets the API's), else strftime.
            data_format = field.format or field.DEFAULT_FORMAT
            to_text = field.SERIALIZATION_FUNCS.get(data_format)
            if to_text is not None:
                return f"(None if {var} is None else {self.name(to_text, 'datetime')}({var}))"
        if kind is fields.Nested and not field.many:
            inner = self.name(compiled(field.schema), "nested")
            return f"(None if {var} is None else {inner}({var}))"
        if kind is fields.List:
            item_var = f"{var}_"
            item = self.value(field.inner, item_var, attribute)
            if item is None:
                return f"(None if {var} is None else list({var}))"
            return f"(None if {var} is None else [{item} for {item_var} in {var}])"
        serialize = self.name(field._serialize, "serialize")
        return f"{serialize}({var}, {attribute!r}, obj)"


def compiled(schema: Schema) -> Dump:
    """A function equal to ``schema.dump`` for one object, faster; ``schema.dump`` where it cannot be."""
    if schema._hooks.get("pre_dump") or schema._hooks.get("post_dump") or schema.many:  # type: ignore[attr-defined]
        return schema.dump
    writer = _Writer()
    body: list[str] = []
    for name, field in schema.dump_fields.items():
        attribute = field.attribute or name
        if field.dump_default is not missing or "." in attribute or not field._CHECK_ATTRIBUTE:
            return schema.dump
        key = field.data_key or name
        expression = writer.value(field, "v", attribute)
        body += [
            f"    v = get({attribute!r}, _MISSING)",
            "    if v is not _MISSING:",
            f"        out[{key!r}] = {expression or 'v'}",
        ]
    writer.namespace["_schema_dump"] = schema.dump
    source = "\n".join(
        [
            "def dump(obj):",
            "    if isinstance(obj, dict):",
            "        get = obj.get",
            "    elif hasattr(obj, '__getitem__'):",
            "        return _schema_dump(obj)",
            "    else:",
            "        def get(key, default):",
            "            return getattr(obj, key, default)",
            "    out = {}",
            *body,
            "    return out",
        ]
    )
    exec(compile(source, f"<compiled dump of {type(schema).__name__}>", "exec"), writer.namespace)
    dump: Dump = writer.namespace["dump"]
    return dump


class VersionedDump:
    """``compiled(schema)`` for the views of a versioned record, the part the same for every caller
    dumped once per version.

    A view carries its record's ``id``, ``version`` and ``updated_at``; every write raises the version
    (``service.common.memo``), so every field but ``caller_fields`` dumps the same way for as long as
    those three are the same. The first dump of a version is kept (under ``variant`` too: e.g. the
    coordinate system asked for); the next ones copy it and dump only the ``caller_fields`` of their
    own view over it. The answer equals ``compiled(schema)(view)``: the same keys, in the same order
    (``tests/handlers/test_case_list_dumps.py`` checks it for callers who see different things).
    """

    def __init__(self, schema: Schema, caller_fields: tuple[str, ...], size: int) -> None:
        self._dump = compiled(schema)
        self._caller_dump = compiled(type(schema)(only=caller_fields))
        self._caller_fields = caller_fields
        self._kept: VersionMemo[dict[str, Any]] = VersionMemo(size)

    def __call__(self, view: dict[str, Any], variant: Hashable = None) -> dict[str, Any]:
        record_id = view.get("id")
        if record_id is None:
            return self._dump(view)  # type: ignore[no-any-return]
        key = (record_id, view.get("version"), view.get("updated_at"), variant)
        kept = self._kept.get(key)
        if kept is None:
            # Answers are serialised, never changed: the dict answered is the one kept.
            return self._kept.put(key, self._dump(view))
        out = dict(kept)
        for name in self._caller_fields:
            if name not in view:
                out.pop(name, None)
        out.update(self._caller_dump(view))
        return out

    def clear(self) -> None:
        """Forget every kept dump."""
        self._kept.clear()

    def __len__(self) -> int:
        return len(self._kept)
