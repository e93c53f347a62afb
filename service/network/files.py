"""The station network's CSV rows (pure): the columns, reading one import row, writing one export row."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from service.network.models import STATUSES, Document, EquipmentItem, StationNetwork
from service.network.rules import MAX_FLOOR_AREA, MAX_ITEMS

CSV_REQUIRED = ("station_code", "status")
CSV_OPTIONAL = ("planned_on", "built_on", "operating_on", "model_on", "site_address", "floor_area_m2", "equipment")
# Written by the export for people reading the file; an import of an exported file ignores them.
CSV_EXPORT_ONLY = (
    "station_name",
    "county_code",
    "county_name",
    "city_name",
    "staff",
    "services",
    "site_photos",
    "workflows",
    "rules",
    "six_haves_met",
    "compliant",
    "verified",
    "verified_at",
    "verified_by",
)
CSV_COLUMNS = (*CSV_REQUIRED, *CSV_OPTIONAL, *CSV_EXPORT_ONLY)
_DATE_COLUMNS = {"planned_on": "planned", "built_on": "built", "operating_on": "operating", "model_on": "model"}
_EQUIPMENT_SPLIT = re.compile(r"[;；]")
_QUANTITY = re.compile(r"^(.+?)\s*[:：]\s*(\d{1,6})$")


def parse_equipment(text: str) -> list[EquipmentItem]:
    """``电脑:2; 打印机:1; 档案柜`` -> items (a missing quantity is 1), else ValueError."""
    items = []
    for part in _EQUIPMENT_SPLIT.split(text):
        part = part.strip()
        if not part:
            continue
        match = _QUANTITY.match(part)
        name, quantity = (match.group(1).strip(), int(match.group(2))) if match else (part, 1)
        if not name or len(name) > 100 or quantity < 1:
            raise ValueError(f"{part!r}: write each item as name or name:quantity (at least 1), separated by ';'.")
        items.append(EquipmentItem(name, quantity))
    if len(items) > MAX_ITEMS:
        raise ValueError(f"At most {MAX_ITEMS} items.")
    return items


def format_equipment(items: Iterable[EquipmentItem]) -> str:
    return "; ".join(f"{i.name}:{i.quantity}" for i in items)


def parse_row(row: Mapping[str, Any], today: date) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The changes one CSV row asks for (the API's change shape), and (column, message) problems."""
    row = {k: unsafe_cell(v) if isinstance(v, str) else v for k, v in row.items()}
    problems: list[tuple[str, str]] = []
    changes: dict[str, Any] = {}
    for name in CSV_REQUIRED:
        if row.get(name) in (None, ""):
            problems.append((name, "Required."))
    status = row.get("status")
    if status not in (None, ""):
        if status in STATUSES:
            changes["status"] = status
        else:
            problems.append(("status", f"Must be one of {', '.join(STATUSES)}."))
    dates: dict[str, date] = {}
    for column, key in _DATE_COLUMNS.items():
        if row.get(column) in (None, ""):
            continue
        try:
            dates[key] = date.fromisoformat(str(row[column]))
        except ValueError:
            problems.append((column, "Must be a date, YYYY-MM-DD."))
    if dates:
        changes["dates"] = dates
    site: dict[str, Any] = {}
    if row.get("site_address") not in (None, ""):
        address = str(row["site_address"])
        if len(address) > 200:
            problems.append(("site_address", "At most 200 characters."))
        site["address"] = address
    if row.get("floor_area_m2") not in (None, ""):
        try:
            area = float(str(row["floor_area_m2"]))
            if not 0 < area <= MAX_FLOOR_AREA:
                raise ValueError
            site["floor_area_m2"] = area
        except ValueError:
            problems.append(("floor_area_m2", f"Square metres, above 0 and at most {MAX_FLOOR_AREA:g}."))
    if site:
        changes["site"] = site
    if row.get("equipment") not in (None, ""):
        try:
            changes["equipment"] = parse_equipment(str(row["equipment"]))
        except ValueError as exc:
            problems.append(("equipment", str(exc)))
    return changes, problems


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection): a leading ``'`` before =, +, -, @."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def unsafe_cell(text: str) -> str:
    """The value :func:`safe_cell` protected, as it was."""
    return text[1:] if text.startswith("'") and text[1:].startswith(_FORMULA_START) else text


def export_row(n: StationNetwork) -> list[str]:
    """One CSV line of the export, in :data:`CSV_COLUMNS` order (text cells safe from formula injection)."""
    r, s = n.record, n.station
    v = n.verification

    def day(key: str) -> str:
        return r.dates[key].isoformat() if key in r.dates else ""

    def docs(items: Iterable[Document]) -> str:
        return "; ".join(f"{d.title} ({d.issued_on.isoformat()})" for d in items)

    met = [c.have for c in n.checklist if c.met]
    cells = [
        s.code,
        r.status or "",
        day("planned"),
        day("built"),
        day("operating"),
        day("model"),
        r.site.address or "",
        f"{r.site.floor_area_m2:g}" if r.site.floor_area_m2 else "",
        format_equipment(r.equipment),
        s.name,
        s.county_code,
        s.county_name,
        s.city_name,
        str(n.staffing.people),
        "; ".join(s.capabilities),
        str(len(r.site.photos)),
        docs(r.workflows),
        docs(r.rules),
        "; ".join(met),
        "yes" if n.compliant else "no",
        "yes" if n.verified else "no",
        v.at.isoformat() if v else "",
        v.by.subject if v else "",
    ]
    return [safe_cell(c) for c in cells]
