"""Checking `matches` patterns against the engine that runs them: PostgreSQL's.

Python's `re` and PostgreSQL's ARE syntax differ: `(?P<n>a)` or `a{300}` compile in Python
and fail in every segment model that uses them, for every account. With the database
reachable, PostgreSQL compiles each pattern itself (warehouse.catalog). Offline, a
conservative check accepts only a subset that both engines parse the same way and says that
the database would decide the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# A pattern -> why it can't be used (text after "the value of ... "), or None.
RegexCheck = Callable[[str], str | None]

# What the offline check understands; PostgreSQL ARE parses all of it like Python does.
_GROUP_OPENERS = ("(?:", "(?=", "(?!", "(?<=", "(?<!")
_ESCAPES = set("dDsSwW") | set(r".^$|?*+()[]{}\/-")
_BRACKET_ESCAPES = set("dsw") | set(r".^$|?*+()[]{}\/-")
_CLASSES = {
    *("alnum", "alpha", "blank", "cntrl", "digit", "graph", "lower"),
    *("print", "punct", "space", "upper", "xdigit", "word"),
}
_BOUND = re.compile(r"\{([0-9]+)(?:,([0-9]*))?\}")
MAX_REPEAT = 255  # PostgreSQL's RE_DUPMAX


def _offline_problem(pattern: str) -> str | None:
    i, in_bracket, after_quantifier = 0, False, False
    while i < len(pattern):
        ch = pattern[i]
        if after_quantifier and ch == "+" and not in_bracket:
            return "a possessive quantifier like '*+'"
        after_quantifier = not in_bracket and ch in "*+?"
        if ch == "\\":
            nxt = pattern[i + 1 : i + 2]
            if nxt not in (_BRACKET_ESCAPES if in_bracket else _ESCAPES):
                return f"the escape '\\{nxt}'"
            i += 2
            continue
        if in_bracket:
            if pattern.startswith("[:", i):
                end = pattern.find(":]", i + 2)
                if end < 0 or pattern[i + 2 : end] not in _CLASSES:
                    return "a '[:' that is not a character class like [:alpha:]"
                i = end + 2
                continue
            if pattern.startswith(("[.", "[="), i):
                return f"the bracket element '{pattern[i : i + 2]}'"
            if ch == "]":
                in_bracket = False
        elif ch == "[":
            in_bracket = True
            i += 1
            if pattern.startswith("^", i):
                i += 1
            if pattern.startswith("]", i):
                i += 1  # a leading ']' is a literal
            continue
        elif ch == "(" and pattern.startswith("(?", i):
            opener = next((g for g in _GROUP_OPENERS if pattern.startswith(g, i)), None)
            if opener is None:
                return f"the group '{pattern[i : i + 4]}...' (named groups, flags, ...)"
            i += len(opener)
            continue
        elif ch == "{":
            bound = _BOUND.match(pattern, i)
            if bound is None:
                return "a '{' that is not a repetition like {2,5} (write \\{ for a brace)"
            counts = [int(g) for g in bound.groups() if g]
            if any(n > MAX_REPEAT for n in counts):
                return f"the repetition '{bound.group(0)}' (at most {MAX_REPEAT})"
            i = bound.end()
            after_quantifier = True
            continue
        i += 1
    return None


def offline_regex_check(pattern: str) -> str | None:
    problem = _offline_problem(pattern)
    if problem is None:
        return None
    return (
        f"uses {problem}, which the offline check cannot confirm PostgreSQL's regex engine "
        "accepts (checked offline, without the database: validate with the database "
        "reachable to let PostgreSQL decide, or rewrite the pattern)"
    )
