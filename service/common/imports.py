"""Pieces shared by the bulk imports (stations, elders): CSV rows, row problems, all-or-nothing refusal."""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
from collections.abc import Iterator, Sequence
from typing import Any

from service.common.errors import BadRequestError, ValidationFailedError
from service.common.text import UNSAFE_CHARACTERS, codepoint


@dataclasses.dataclass(frozen=True, slots=True)
class RowError:
    row: int  # CSV: line number (header is line 1); GeoJSON: feature number from 1
    field: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


def decode_text(body: bytes) -> tuple[str, str]:
    """The text of an uploaded file and its encoding: UTF-8 (a byte-order mark allowed), else GB18030.

    Excel on Chinese Windows saves CSV in GBK, which GB18030 contains. Valid UTF-8 is taken as
    UTF-8 (Chinese GBK text is almost never valid UTF-8); anything neither decodes is refused.
    A character no answer format could carry (control characters other than tab and line
    breaks, U+FFFE, U+FFFF) is refused with its line, as JSON bodies refuse it.
    """
    if body.startswith(codecs.BOM_UTF8):
        try:
            return _checked(body[len(codecs.BOM_UTF8) :].decode("utf-8")), "utf-8-sig"
        except UnicodeDecodeError:
            raise BadRequestError("invalid_encoding", "The file starts like UTF-8 but is not valid UTF-8.") from None
    try:
        return _checked(body.decode("utf-8")), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return _checked(body.decode("gb18030")), "gb18030"
    except UnicodeDecodeError:
        raise BadRequestError(
            "invalid_encoding", "The file must be UTF-8 or GBK/GB18030 (as Excel saves CSV)."
        ) from None


def _checked(text: str) -> str:
    found = UNSAFE_CHARACTERS.search(text)
    if found is not None:
        line = text.count("\n", 0, found.start()) + 1
        raise BadRequestError(
            "invalid_character",
            f"Line {line} of the file holds the character {codepoint(found.group())}, which text here may not "
            "contain (control characters other than tab and line breaks, U+FFFE, U+FFFF).",
            line=line,
            character=codepoint(found.group()),
        )
    return text


def decode_upload(body: bytes) -> str:
    """The text of an uploaded file (UTF-8 with or without a byte-order mark, or GBK/GB18030)."""
    return decode_text(body)[0]


def csv_rows(
    text: str, *, required: Sequence[str], optional: Sequence[str], what: str
) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) pairs of a CSV whose header must hold ``required`` and may hold ``optional``.

    Values are stripped; empty optional values are left out; a row with more values than
    the header becomes ``{"__error__": message}``.
    """
    reader = csv.DictReader(io.StringIO(text))
    header = _header(reader)
    missing = [c for c in required if c not in header]
    unknown = [c for c in header if c not in required and c not in optional]
    if missing or unknown:
        errors: dict[str, list[str]] = {}
        if missing:
            errors["columns"] = [f"Missing column(s): {', '.join(missing)}."]
        if unknown:
            errors.setdefault("columns", []).append(f"Unknown column(s): {', '.join(unknown)}.")
        raise ValidationFailedError("invalid_import", f"The CSV header is not the {what} format.", errors)
    rows = []
    for record in _records(reader):
        line = reader.line_num
        if None in record:
            rows.append((line, {"__error__": "The row has more values than the header."}))
            continue
        row: dict[str, Any] = {k: (v.strip() if isinstance(v, str) else v) for k, v in record.items()}
        row = {k: v for k, v in row.items() if v not in ("", None) or k in required}
        rows.append((line, row))
    return rows


def _malformed_csv(reader: csv.DictReader[str], exc: csv.Error) -> BadRequestError:
    line = reader.reader.line_num or 1  # the DictReader's own count is updated only after a good row
    return BadRequestError("malformed_csv", f"The CSV cannot be read at line {line}: {exc}.", line=line)


def _header(reader: csv.DictReader[str]) -> list[str]:
    try:
        return list(reader.fieldnames or [])
    except csv.Error as exc:
        raise _malformed_csv(reader, exc) from None


def _records(reader: csv.DictReader[str]) -> Iterator[dict[str | Any, Any]]:
    """The rows; a line the csv module cannot read (e.g. a field over its size limit) is 400 ``malformed_csv``."""
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _malformed_csv(reader, exc) from None
        yield record


def refuse_if_errors(errors: Sequence[RowError]) -> None:
    """Raise the all-or-nothing refusal listing every bad row, if there is any."""
    if errors:
        raise ValidationFailedError(
            "invalid_import",
            f"{len(errors)} problem(s) in the file; nothing was written.",
            {f"rows[{e.row}].{e.field}": [e.message] for e in errors},
            rows=[e.to_dict() for e in errors],
        )
