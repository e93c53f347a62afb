"""The catalogue's vocabulary: scenarios, capabilities, field types and the service-type dataclasses."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Literal

FieldType = Literal["string", "text", "number", "date", "datetime", "single_choice", "multi_choice", "phone", "id_card"]
FIELD_TYPES: tuple[str, ...] = (
    "string",
    "text",
    "number",
    "date",
    "datetime",
    "single_choice",
    "multi_choice",
    "phone",
    "id_card",
)
CHOICE_TYPES = ("single_choice", "multi_choice")
# Kinds of personal data a form field may hold (PIPL); docs/cases.md has the rule for each.
PERSONAL_KINDS: tuple[str, ...] = ("phone", "id_card", "name", "address")
_TYPE_KINDS = {"phone": "phone", "id_card": "id_card"}
STRING_MAX = {"string": 200, "text": 4000}
SHANGHAI = timezone(timedelta(hours=8))


@dataclasses.dataclass(frozen=True, slots=True)
class Scenario:
    code: str
    name_zh: str
    name_en: str


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("elderly", "互联网+养老", "Elderly care"),
    Scenario("children", "互联网+儿童福利", "Children's welfare"),
    Scenario("community", "互联网+社区", "Community services"),
    Scenario("social_aid", "互联网+社会救助", "Social assistance"),
    Scenario("social_org", "互联网+社会组织", "Social organizations"),
    Scenario("social_work", "互联网+专业社会工作服务", "Professional social work"),
    Scenario("funeral", "互联网+殡葬服务", "Funeral services"),
)
SCENARIO_CODES = tuple(s.code for s in SCENARIOS)
CAPABILITIES: tuple[str, ...] = (
    "elderly_care",
    "child_protection",
    "community",
    "social_aid",
    "social_org",
    "social_work",
    "funeral",
)


@dataclasses.dataclass(frozen=True, slots=True)
class Choice:
    code: str
    label_zh: str
    label_en: str


@dataclasses.dataclass(frozen=True, slots=True)
class FormField:
    """One question on a service's form (these double as Open311 attributes)."""

    code: str
    type: str
    label_zh: str
    label_en: str
    required: bool = False
    choices: tuple[Choice, ...] = ()
    min: float | None = None
    max: float | None = None
    max_length: int | None = None
    help_zh: str = ""
    help_en: str = ""
    # Personal data: which kind (phone and id_card fields are so by their type), and whether the
    # answer identifies the person filing (hidden from station staff on confidential services,
    # never stored on anonymous reports; phone fields do unless marked otherwise).
    personal: str | None = None
    reporter: bool | None = None

    def __post_init__(self) -> None:
        kind = self.personal or _TYPE_KINDS.get(self.type)
        object.__setattr__(self, "personal", kind)
        if self.reporter is None:
            object.__setattr__(self, "reporter", kind == "phone")


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceType:
    code: str
    version: int
    scenario: str
    name_zh: str
    name_en: str
    description_zh: str
    description_en: str
    fields: tuple[FormField, ...]
    capability: str
    booking: bool = False
    # The case's top-level `address` (where the service is delivered) is required. Contact and
    # address are asked once, at the top level of a filing, never again as form fields.
    address_required: bool = False
    confidential: bool = False
    allows_anonymous: bool = False
    urgent: bool = False
    # "working": limits count Chinese office hours and working days; "calendar": elapsed
    # time around the clock, for emergencies that cannot wait for Monday.
    clock: str = "working"
    sign_within_hours: int = 8
    resolve_within_days: int = 5
    # What a resident reads before filing (service page): an icon key, who may apply, what to
    # prepare, how long it takes. Built-ins get them from service/catalog_guides.py.
    icon: str = ""
    conditions_zh: str = ""
    conditions_en: str = ""
    materials_zh: tuple[str, ...] = ()
    materials_en: tuple[str, ...] = ()
    time_limit_zh: str = ""
    time_limit_en: str = ""
    retired: bool = False
    created_at: datetime | None = None

    @property
    def active(self) -> bool:
        return not self.retired
