"""The id of an idempotency record, shared by the records and by the cases a keyed request makes."""

from __future__ import annotations


def record_id(subject: str, key: str) -> str:
    """Unambiguous id for (subject, key): the subject's length prefixes it."""
    return f"{len(subject)}:{subject}:{key}"
