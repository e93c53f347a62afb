"""The README stays true: every setting is in its configuration table, every linked doc exists."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from config.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_configuration_table() -> None:
    rows = set(re.findall(r"^\| `(HUIMIN_[A-Z0-9_]+)` \|", README, re.M))
    settings = {"HUIMIN_" + f.name.upper() for f in dataclasses.fields(Settings)}
    assert settings - rows == set(), "add these settings to the README's configuration table"
    assert rows - settings == set(), "the README lists settings that no longer exist"


def test_linked_documents_exist() -> None:
    links = re.findall(r"\]\(((?:docs|data|config|handlers)/[^)#]+)\)", README)
    assert links
    missing = [link for link in links if not (ROOT / link).exists()]
    assert missing == []
