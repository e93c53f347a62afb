"""Field types shared by the schemas."""

from __future__ import annotations

from typing import Any

from marshmallow import fields


class StrictBoolean(fields.Boolean):
    """A JSON ``true`` or ``false`` and nothing else (not 0, 1 or "yes"), as the document says.

    Query strings keep ``fields.Boolean``, which reads ``true``/``false`` text.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value
