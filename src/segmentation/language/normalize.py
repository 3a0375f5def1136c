"""What staging makes of a raw value, in Python: the twins of the staging macros
`normalize_picklist` (lower snake_case) and `normalize_country` (ISO 3166-1 alpha-2), and
the warning for a definition value that can therefore never match the staged data
(`lifecycle_stage eq 'Customer'`: staging stores 'customer').

The country aliases are one data file, seeds/country_aliases.csv (alias,code; the alias as
`country_key` makes it). The package ships it (segmentation/language/country_aliases.csv,
a link to the seed); the dbt macro `country_aliases()` is generated from the same file
(`python -m segmentation_dev.country_aliases`), and tests/dbt/test_normalize_sql.py checks on
PostgreSQL that SQL and Python agree.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from segmentation.language.activity import OBJECTS
from segmentation.language.catalogue import ENTITIES
from segmentation.language.issues import Loc
from segmentation.language.model import Condition, Group, Node, Not, Segment

PICKLIST = "picklist"
COUNTRY = "country"
ALIASES_FILE = "country_aliases.csv"
# What an alias may hold: letters and digits (any script) in words separated by one space,
# exactly what `country_key` leaves. Codes are ISO 3166-1 alpha-2.
ALIAS = re.compile(r"^[^\W_]+( [^\W_]+)*$")
CODE = re.compile(r"^[A-Z]{2}$")

# The staged columns a normaliser writes: (staging model, column) -> which one
# (models/staging/crm/*.sql; tests/unit/test_normalize.py reads the models to keep this true).
NORMALISED: dict[tuple[str, str], str] = {
    ("stg_crm__contacts", "gender"): PICKLIST,
    ("stg_crm__contacts", "country"): COUNTRY,
    ("stg_crm__contacts", "lifecycle_stage"): PICKLIST,
    ("stg_crm__contacts", "lead_source"): PICKLIST,
    ("stg_crm__contacts", "loyalty_tier"): PICKLIST,
    ("stg_crm__companies", "industry"): PICKLIST,
    ("stg_crm__companies", "country"): COUNTRY,
    ("stg_crm__deals", "status"): PICKLIST,
    ("stg_crm__tickets", "status"): PICKLIST,
    ("stg_crm__tickets", "priority"): PICKLIST,
    ("stg_crm__tickets", "category"): PICKLIST,
    ("stg_crm__tickets", "channel"): PICKLIST,
    ("stg_crm__conversations", "channel"): PICKLIST,
    ("stg_crm__conversations", "status"): PICKLIST,
    ("stg_crm__campaign_events", "event_type"): PICKLIST,
    ("stg_crm__campaigns", "channel"): PICKLIST,
    ("stg_crm__orders", "status"): PICKLIST,
    ("stg_crm__accounts", "package"): PICKLIST,
}
# The operators whose values are compared with the staged value as they are.
EXACT_OPS = frozenset({"eq", "neq", "in", "not_in"})


def sql_lower(value: str) -> str:
    """PostgreSQL's lower(): each character on its own (no final sigma), and a capital
    dotted I is 'i' (Python's full mapping gives 'i' and a combining dot)."""
    return "".join(c.lower()[0] for c in value)


def normalize_picklist(value: str | None) -> str | None:
    """`normalize_picklist` without aliases: lower-case, every run of characters other
    than a-z and 0-9 one '_', no '_' at either end; blank -> None."""
    if value is None:
        return None
    return re.sub(r"[^a-z0-9]+", "_", sql_lower(value)).strip("_") or None


def country_key(value: str) -> str:
    """A country spelling as the aliases are keyed: lower-case, every run of characters
    other than letters and digits one space, trimmed ('  Côte d'Ivoire ' -> 'côte d ivoire')."""
    return re.sub(r"[\W_]+", " ", sql_lower(value)).strip(" ")


def normalize_country(value: str | None) -> str | None:
    """`normalize_country`: the ISO 3166-1 alpha-2 code of a country spelling ('Indonesia',
    ' id ', 'IDN' -> 'ID'); None when blank or not recognised."""
    if value is None:
        return None
    return country_aliases().get(country_key(value))


def parse_country_aliases(text: str, source: str = ALIASES_FILE) -> dict[str, str]:
    """alias -> code from the CSV text; ValueError naming the line of a bad row."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header != ["alias", "code"]:
        raise ValueError(f"{source}:1: the header must be 'alias,code', not {header!r}")
    aliases: dict[str, str] = {}
    for line, row in enumerate(reader, start=2):
        if len(row) != 2 or not _is_alias(row[0]) or not CODE.match(row[1]):
            raise ValueError(
                f"{source}:{line}: {row!r} is not alias,code (an alias as country_key leaves "
                "it, an upper-case alpha-2 code)"
            )
        if row[0] in aliases:
            raise ValueError(f"{source}:{line}: alias {row[0]!r} appears twice")
        aliases[row[0]] = row[1]
    return aliases


def _is_alias(text: str) -> bool:
    return bool(ALIAS.match(text)) and country_key(text) == text


@functools.cache
def country_aliases() -> Mapping[str, str]:
    """The shipped alias table (the package's copy of seeds/country_aliases.csv)."""
    text = resources.files(__package__).joinpath(ALIASES_FILE).read_text(encoding="utf-8")
    return parse_country_aliases(text)


@functools.cache
def country_codes() -> frozenset[str]:
    return frozenset(country_aliases().values())


@dataclass(frozen=True)
class Normalised:
    """What staging would store for a value a definition compares with."""

    value: str
    normalised: str | None  # None: nothing staging stores can equal it


def staged_form(kind: str, value: str) -> Normalised | None:
    """None when `value` can be a staged value of a `kind` column; else what it would be."""
    if kind == COUNTRY:
        if value in country_codes():
            return None
        return Normalised(value, normalize_country(value))
    form = normalize_picklist(value)
    return None if form == value else Normalised(value, form)


def _conditions(node: Node | None) -> Iterator[Condition]:
    """Every field comparison in a tree, `has:` filters included."""
    if node is None:
        return
    if isinstance(node, Condition):
        yield node
    elif isinstance(node, Group):
        for child in node.nodes:
            yield from _conditions(child)
    elif isinstance(node, Not):
        yield from _conditions(node.node)
    else:  # has: filters its rows with a tree of its own
        yield from _conditions(getattr(node, "where", None))


def staging_models() -> dict[str, str]:
    """Entity name -> its staging model: the contact, its company and the `has:` objects."""
    models = {name: entity.model for name, entity in ENTITIES.items()}
    models.update({name: obj.model for name, obj in OBJECTS.items()})
    return models


def value_warnings(segments: Iterable[Segment]) -> list[str]:
    """One `file:line:col: ...` line per value that can never match the staged data."""
    models = staging_models()
    found: set[tuple[Loc, str]] = set()
    for seg in segments:
        for cond in _conditions(seg.condition):
            field = cond.field
            if field is None or cond.op not in EXACT_OPS:
                continue
            kind = NORMALISED.get((models.get(field.entity, ""), field.column))
            if kind is None:
                continue
            values: list[Any] = cond.value if isinstance(cond.value, list) else [cond.value]
            for value in values:
                if isinstance(value, str) and (staged := staged_form(kind, value)):
                    found.add((cond.loc, _message(field.name, cond.op, kind, staged)))
    return [f"{loc}: {message}" for loc, message in sorted(found)]


def _message(field: str, op: str, kind: str, found: Normalised) -> str:
    stored = "as an ISO 3166-1 alpha-2 code like 'ID'" if kind == COUNTRY else "in lower snake_case"
    head = f"{field} {op}: '{found.value}' never matches, staging stores {field} {stored}"
    if found.normalised is None:
        return f"{head}, and '{found.value}' is no country it knows"
    return f"{head} (did you mean '{found.normalised}'?)"
