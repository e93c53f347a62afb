"""What text the service accepts and how it writes text into XML.

Every answer format the service writes has to carry every stored string: JSON and BSON
need valid Unicode scalar values (no lone UTF-16 surrogates), and XML 1.0 allows only the
``Char`` production: TAB, LF, CR and U+0020 upwards, without surrogates, U+FFFE and U+FFFF
(https://www.w3.org/TR/xml/#charsets). So input is refused when it holds any other
character (``invalid_character``), at the place each body is read; and the XML writer
replaces such characters with U+FFFD, so records stored before this rule, or written by
other paths, still give well-formed XML.
"""

from __future__ import annotations

import json
import re
from typing import Any

from service.common.errors import BadRequestError

# C0 controls other than TAB, LF, CR; UTF-16 surrogates; the two noncharacters XML excludes.
UNSAFE_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
REPLACEMENT = "\ufffd"
MAX_JSON_DEPTH = 32


def codepoint(char: str) -> str:
    """``U+0001`` for a character, as problem documents name it."""
    return f"U+{ord(char):04X}"


def first_unsafe(text: str) -> str | None:
    """Pure: the first character of ``text`` that XML 1.0 or UTF-8 cannot carry, else None."""
    found = UNSAFE_CHARACTERS.search(text)
    return found.group() if found else None


def unsafe_character_error(where: str, char: str, *, what: str = "field") -> BadRequestError:
    """The 400 ``invalid_character`` problem for ``char`` found at ``where``."""
    detail = (
        f"The {what} {where!r} holds the character {codepoint(char)}, which text here may not contain "
        "(control characters other than tab and line breaks, lone UTF-16 surrogates, U+FFFE, U+FFFF)."
    )
    return BadRequestError("invalid_character", detail, field=where, character=codepoint(char))


def check_text(value: Any, path: str = "", *, what: str = "field") -> None:
    """Raise ``invalid_character`` for the first unsafe character in any string, key or value, at any depth.

    Walks without recursion, so a deep structure cannot exhaust the stack.
    """
    pending: list[tuple[Any, str]] = [(value, path)]
    while pending:
        item, where = pending.pop()
        if isinstance(item, str):
            char = first_unsafe(item)
            if char is not None:
                raise unsafe_character_error(where or "(body)", char, what=what)
            continue
        if isinstance(item, dict):
            for key, inner in item.items():
                inner_path = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and (char := first_unsafe(key)) is not None:
                    raise unsafe_character_error(where or "(body)", char, what=f"{what} name in")
                pending.append((inner, inner_path))
        elif isinstance(item, list | tuple):
            pending.extend((inner, f"{where}[{i}]") for i, inner in enumerate(item))


def parse_json_text(raw: str, *, what: str = "body") -> Any:
    """Parse JSON text at most 32 levels deep; BadRequestError ``malformed_json`` or ``too_deeply_nested``."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadRequestError(
            "malformed_json", f"The {what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None
    except RecursionError:  # the parser's own limit (about 1,000 levels), met before ours is checked
        raise BadRequestError("too_deeply_nested", f"The JSON {what} is nested too deeply.") from None
    check_depth(data, MAX_JSON_DEPTH)
    return data


def check_depth(value: Any, limit: int) -> None:
    """Raise ``too_deeply_nested`` when arrays and objects nest deeper than ``limit`` (without recursing)."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            raise BadRequestError("too_deeply_nested", f"The JSON is nested deeper than {limit} levels.")
        pending.extend((child, depth + 1) for child in children)


def load_json_text(raw: str, *, what: str = "body") -> Any:
    """JSON text as the service accepts it: parsed, at most 32 levels deep, no unsafe characters."""
    data = parse_json_text(raw, what=what)
    check_text(data)
    return data


def xml_text(text: str) -> str:
    """Pure: ``text`` with every character XML 1.0 cannot hold replaced by U+FFFD."""
    return UNSAFE_CHARACTERS.sub(REPLACEMENT, text)
