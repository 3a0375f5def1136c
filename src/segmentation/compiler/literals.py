"""Jinja string literals for values from YAML.

Values reach the generated files only inside Jinja string literals made by `jinja_string`,
whose JSON escapes every character that could end the string or open a Jinja tag, so no
YAML value can change the template.
"""

from __future__ import annotations

import json
import string
from decimal import Decimal
from typing import Any

_SAFE = set(string.ascii_letters + string.digits + " _.,:;@/+=()-!?*[]^$|~`&")


def _json_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in _SAFE:
            out.append(ch)
        elif ord(ch) > 0xFFFF:
            out.append(json.dumps(ch))  # a surrogate pair, ASCII only
            out[-1] = out[-1][1:-1]
        else:
            out.append(f"\\u{ord(ch):04x}")
    out.append('"')
    return "".join(out)


def to_safe_json(value: Any) -> str:
    """JSON using only characters that are inert inside a single-quoted Jinja string.

    Strings escape everything but letters, digits and harmless punctuation (so no quote,
    backslash, brace, '%' or '#' appears in them), and closing braces are spaced so the
    text never contains '}}'.
    """
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _decimal(value)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(to_safe_json(v) for v in value) + " ]"
    if isinstance(value, dict):
        items = (f"{_json_string(str(k))}: {to_safe_json(v)}" for k, v in value.items())
        return "{ " + ", ".join(items) + " }"
    raise TypeError(f"cannot encode {type(value).__name__}")


def jinja_string(value: Any) -> str:
    """A Jinja single-quoted string literal holding `value` as JSON (for fromjson)."""
    text = to_safe_json(value)
    # The only backslashes are JSON escapes; Jinja unescapes string literals once.
    return "'" + text.replace("\\", "\\\\") + "'"


def _decimal(value: float | int) -> str:
    return format(Decimal(str(value)).normalize(), "f")
