"""The staging normalisers and their Python twins (segmentation.language.normalize) agree on
PostgreSQL: `normalize_country` maps every alias of seeds/country_aliases.csv (as written,
upper-cased and punctuated) to its code, and both twins give what the macros give on a
sample of tricky values (case, accents, punctuation, whitespace, a capital dotted I, other
scripts, blanks)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from _segments import copy_project, project_dir

from segmentation.language import normalize
from segmentation.warehouse.dbt_runner import run_dbt

pytestmark = pytest.mark.slow

TRICKY = [
    "Indonesia",
    "  INDONESIA  ",
    "indonésia",
    "Republic of Indonesia",
    "RI",
    "ri.",
    "IDN",
    "I.D.",
    "id\t",
    "U.S.A.",
    "United   States",
    "united-states-of-america",
    "UK",
    "Great Britain",
    "Côte d'Ivoire",
    "CÔTE D\u2019IVOIRE",
    "Åland Islands",
    "ÅLAND ISLANDS",
    "Türkiye",
    "TÜRKİYE",
    "İstanbul",
    "Korea, Republic of",
    "Viet Nam",
    "Bosnia & Herzegovina",
    "São Tomé and Príncipe",
    "ОАЭ",
    "日本",
    "\uff29\uff24",
    "Customer",
    "  Marketing Qualified Lead ",
    "marketing_qualified_lead",
    "Closed-Won",
    "--VIP--",
    "Laki-laki",
    "Opt-Out!",
    "e_mail",
    "ÉTÉ",
    "Straße",
    "ΟΔΟΣ",
    "a\u00a0b",
    "x\u200by",
    "123",
    "²",
    "_",
    "",
    "   ",
    None,
]


@pytest.fixture(scope="module")
def normalised_sql(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A query giving (n, value, country, picklist) for the bound array %(values)s, compiled
    by dbt from the staging macros."""
    path = copy_project(tmp_path_factory.mktemp("normalize") / "project")
    inline = (
        "select t.n, t.v, {{ normalize_country('t.v') }} as country, "
        "{{ normalize_picklist('t.v') }} as picklist "
        "from unnest(cast(%(values)s as text[])) with ordinality as t (v, n) order by t.n"
    )
    with project_dir(path):
        result = run_dbt(["compile", "--inline", inline])
    yield result.result.results[0].node.compiled_code


def run(db: psycopg.Connection, query: str, values: list[str | None]) -> list[tuple]:
    return db.execute(query, {"values": values}).fetchall()


def test_every_alias_maps_to_its_code_in_sql(db: psycopg.Connection, normalised_sql: str) -> None:
    aliases = normalize.country_aliases()
    spellings = [*aliases, *(a.upper() for a in aliases), *(f" {a.title()}." for a in aliases)]
    rows = run(db, normalised_sql, spellings)
    codes = list(aliases.values())
    wrong = [
        (value, country, expected)
        for (_, value, country, _), expected in zip(rows, codes * 3, strict=True)
        if country != expected
    ]
    assert not wrong, wrong[:20]


def test_sql_and_python_agree_on_tricky_values(db: psycopg.Connection, normalised_sql: str) -> None:
    rows = run(db, normalised_sql, TRICKY)
    sql_side = [(value, country, picklist) for _, value, country, picklist in rows]
    python_side = [
        (value, normalize.normalize_country(value), normalize.normalize_picklist(value))
        for value in TRICKY
    ]
    assert sql_side == python_side
    # The sample is not trivial: both recognise spellings and reshape picklists.
    found = dict(zip(TRICKY, python_side, strict=True))
    assert found["ÅLAND ISLANDS"][1] == "AX" and found["CÔTE D\u2019IVOIRE"][1] == "CI"
    assert found["  Marketing Qualified Lead "][2] == "marketing_qualified_lead"
    assert found["İstanbul"][2] == "istanbul"
