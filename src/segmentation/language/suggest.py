"""'did you mean ...?' hints for misspelt keys, fields and operators."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# Spellings people bring from other tools, mapped to ours.
OPERATOR_ALIASES = {
    "=": "eq",
    "==": "eq",
    "equals": "eq",
    "is": "eq",
    "!=": "neq",
    "<>": "neq",
    "ne": "neq",
    "not_eq": "neq",
    "not_equals": "neq",
    ">": "gt",
    "greater_than": "gt",
    ">=": "gte",
    "ge": "gte",
    "greater_than_or_equal": "gte",
    "at_least": "gte",
    "<": "lt",
    "less_than": "lt",
    "<=": "lte",
    "le": "lte",
    "less_than_or_equal": "lte",
    "at_most": "lte",
    "one_of": "in",
    "not_one_of": "not_in",
    "regex": "matches",
    "like": "contains",
    "ilike": "icontains",
    "exists": "is_set",
    "is_null": "is_not_set",
    "is_not_null": "is_set",
    "not_exists": "is_not_set",
    "true": "is_true",
    "false": "is_false",
    "has_any": "contains_any",
    "has_all": "contains_all",
    "has_none": "contains_none",
    "older_than": "more_than_ago",
    "in_last": "within_last",
    "in_next": "within_next",
}


def did_you_mean(
    word: object, choices: Iterable[str], aliases: dict[str, str] | None = None
) -> str:
    """' (did you mean 'x'?)' or ''."""
    options = list(choices)
    text = str(word)
    if aliases and text.lower() in aliases and aliases[text.lower()] in options:
        return f" (did you mean '{aliases[text.lower()]}'?)"
    close = difflib.get_close_matches(text, options, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
