"""Reference figures per division and year that the indicators need and Huimin does not own.

The older population (60 and over, 老年人口) and care-home beds (养老机构床位) come from the
statistics bureau and the civil-affairs yearbook; administrators import them as CSV with
their source noted on every row. A city or the province without its own figure is the sum
of the figures of the counties under it (and the answer says so).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from service.common.context import Context
from service.common.errors import PermissionDeniedError, UnsupportedMediaTypeError
from service.common.imports import RowError, csv_rows, decode_text
from service.common.models import Page, Principal, require_role
from service.visits.periods import local_date
from service.workforce import rules
from service.workforce.models import FigureFilter, ImportReport, ReferenceFigure
from service.workforce.repository.store import WorkforceRepository

CSV_REQUIRED = ("division", "year", "source")
CSV_OPTIONAL = ("older_population", "care_home_beds")
FIRST_YEAR = 2000
MAX_SOURCE = 200


def check_figure_row(row: dict[str, Any], this_year: int) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Pure: the stored fields of a figures row, and its problems."""
    out: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    code = str(row.get("division") or "").strip()
    if len(code) != 6 or not code.isdigit() or code[0] == "0":
        problems.append(("division", "Must be a 6-digit province, city or county code."))
    else:
        out["division"] = code
    try:
        year = int(str(row.get("year") or "").strip())
        if not FIRST_YEAR <= year <= this_year:
            raise ValueError
        out["year"] = year
    except ValueError:
        problems.append(("year", f"Must be a year from {FIRST_YEAR} to {this_year}."))
    for name in CSV_OPTIONAL:
        value = row.get(name)
        if value in (None, ""):
            out[name] = None
            continue
        try:
            number = int(str(value).replace(",", "").strip())
            if number < 0:
                raise ValueError
            out[name] = number
        except ValueError:
            problems.append((name, "Must be a whole number of 0 or more."))
    if row.get("older_population") in (None, "") and row.get("care_home_beds") in (None, ""):
        problems.append(("older_population", "Give older_population, care_home_beds or both."))
    source = str(row.get("source") or "").strip()
    if not source:
        problems.append(("source", "Name where the figure comes from (e.g. 2024年统计年鉴)."))
    elif len(source) > MAX_SOURCE:
        problems.append(("source", f"At most {MAX_SOURCE} characters."))
    else:
        out["source"] = source
    return out, problems


async def import_figures(
    *, ctx: Context, principal: Principal, body: bytes, content_type: str, dry_run: bool
) -> ImportReport:
    """Check a figures CSV (division, year, older_population, care_home_beds, source); unless a dry run,
    write all rows or none (a row replaces the earlier figure of its division and year)."""
    require_role(principal, ("admin",), code="admin_only", detail="Only administrators import reference figures.")
    if content_type != "text/csv":
        raise UnsupportedMediaTypeError("unsupported_media_type", "Send the figures as text/csv.")
    text, encoding = decode_text(body)
    rows = csv_rows(text, required=CSV_REQUIRED, optional=CSV_OPTIONAL, what="reference figures")
    now = ctx.now()
    this_year = local_date(now).year
    errors: list[RowError] = []
    docs: dict[tuple[str, int], dict[str, Any]] = {}
    lines: dict[tuple[str, int], int] = {}
    for line, row in rows:
        if "__error__" in row:
            errors.append(RowError(line, "_row", row["__error__"]))
            continue
        fields, problems = check_figure_row(row, this_year)
        errors += [RowError(line, f, m) for f, m in problems]
        if problems:
            continue
        key = (fields["division"], fields["year"])
        if key in docs:
            errors.append(RowError(line, "division", f"The same division and year are on line {lines[key]}."))
            continue
        lines[key] = line
        docs[key] = {**fields, "imported_at": now, "imported_by": principal.subject}
    repo = WorkforceRepository(ctx.db)
    existing = await repo.figures_for(docs) if docs else {}
    report, write = rules.import_outcome(
        dry_run=dry_run,
        total=len(rows),
        to_create=sum(1 for k in docs if k not in existing),
        to_update=sum(1 for k in docs if k in existing),
        encoding=encoding,
        errors=errors,
    )
    if not write:
        return report
    await repo.apply_figures(list(docs.values()))
    return dataclasses.replace(report, written=True)


async def list_figures(
    *,
    ctx: Context,
    principal: Principal,
    division: str | None = None,
    year: int | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[ReferenceFigure]:
    """Reference figures under a division (supervisors: their own), optionally of one year."""
    require_role(
        principal,
        rules.MANAGERS,
        code="workforce_managers_only",
        detail="Reference figures are read by supervisors and administrators.",
    )
    prefix = (
        rules.prefix_of(division)
        if division
        else (principal.division_prefix if principal.role == "supervisor" else None)
    )
    if principal.role == "supervisor" and not rules.may_see_division(principal, prefix or ""):
        raise PermissionDeniedError("outside_your_area", "That division is outside yours.")
    wanted = FigureFilter(prefix=prefix or None, year=year)
    return await WorkforceRepository(ctx.db).list_figures(wanted, limit=limit, cursor=cursor)


@dataclasses.dataclass(frozen=True, slots=True)
class FigureTotal:
    """A division's figure of one kind: the value, and which rows it comes from."""

    value: int | None
    rows: tuple[ReferenceFigure, ...]
    summed: bool


async def figure_total(ctx: Context, prefix: str, year: int, name: str) -> FigureTotal:
    """``name`` (older_population, care_home_beds) of the division ``prefix`` in ``year``: its own row,
    else the sum of the county rows under it (None when there is neither)."""
    rows = await WorkforceRepository(ctx.db).figures_under(prefix, year)
    own = rules.code_of(prefix) if len(prefix) <= 6 else None
    for row in rows:
        if row.division == own and getattr(row, name) is not None:
            return FigureTotal(getattr(row, name), (row,), False)
    counties = [
        r
        for r in rows
        if not r.division.endswith("00") and getattr(r, name) is not None and r.division.startswith(prefix)
    ]
    if not counties:
        return FigureTotal(None, (), False)
    return FigureTotal(sum(getattr(r, name) for r in counties), tuple(counties), True)
