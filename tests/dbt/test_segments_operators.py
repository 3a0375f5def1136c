"""Every operator, with its NULL behaviour, on real staging data built by dbt.

One module-scoped build: hand-made contacts k1..k6 (acme) and k7 (beta), one segment
definition per case below, one `dbt build`, then each test checks one segment's members.
The as-of date is 2024-03-15 (a Friday in a leap year); acme's timezone is Asia/Jakarta.
k3 has every optional field unset; k5 was created after the as-of date, so it is never
a member of anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from _segments import (
    build,
    copy_project,
    insert_accounts,
    insert_companies,
    insert_contacts,
    link_company,
    members,
    project_dir,
    segment_yaml,
    write_def,
)

pytestmark = pytest.mark.slow

AS_OF = "2024-03-15"
INJECTION = "x'; drop table crm_raw.contacts; --"

CONTACTS = [
    {
        "contact_id": "k1",
        "account_id": "acme",
        "full_name": "Ana Maria",
        "email": "ana@gmail.com",
        "city": "Jakarta",
        "lifecycle_stage": "customer",
        "loyalty_tier": "gold",
        "loyalty_points": 100,
        "consent_whatsapp": True,
        "tags": ["vip", "newsletter"],
        "custom_fields": {
            "vip_level": 3,
            "plan": "pro",
            "renewal": "2024-03-20",
            "beta": True,
            "langs": ["id", "en"],
        },
        "date_of_birth": "1990-03-18",
        "created_at": "2023-01-10 10:00+07",
    },
    {
        "contact_id": "k2",
        "account_id": "acme",
        "full_name": "Budi",
        "email": "budi@competitor.com",
        "city": "Bandung",
        "lifecycle_stage": "lead",
        "loyalty_tier": "silver",
        "loyalty_points": 5000,
        "consent_whatsapp": False,
        "tags": ["do_not_contact"],
        "custom_fields": {"vip_level": "2", "plan": "free", "renewal": "2024-02-30", "beta": False},
        "date_of_birth": "2000-02-29",
        # 2024-02-29 17:30 UTC is already 1 March in Jakarta.
        "created_at": "2024-02-29 17:30+00",
    },
    {"contact_id": "k3", "account_id": "acme"},
    {
        "contact_id": "k4",
        "account_id": "acme",
        "full_name": "Cici O'Brien",
        "email": "cici@yahoo.co.id",
        "city": "Surabaya",
        "lifecycle_stage": "customer",
        "loyalty_tier": "platinum",
        "loyalty_points": 0,
        "consent_whatsapp": True,
        "tags": ["newsletter"],
        "custom_fields": {"vip_level": 1.5, "plan": "Pro"},
        "date_of_birth": "1985-12-31",
        "created_at": "2024-03-15 23:59+07",
    },
    {
        "contact_id": "k5",
        "account_id": "acme",
        "full_name": "Later",
        "email": "ana2@gmail.com",
        "city": "Jakarta",
        "loyalty_points": 100,
        "consent_whatsapp": True,
        "created_at": "2024-03-16 01:00+07",
    },
    {
        "contact_id": "k6",
        "account_id": "acme",
        "full_name": "DEDE KURNIA",
        "email": "dede@outlook.com",
        "city": "Medan",
        "lifecycle_stage": "customer",
        "loyalty_tier": "bronze",
        "loyalty_points": 4999,
        "consent_whatsapp": True,
        "tags": [],
        "custom_fields": {"plan": None},
        "date_of_birth": "1992-03-15",
        "created_at": "2023-09-17 12:00+07",
    },
    {
        "contact_id": "k7",
        "account_id": "beta",
        "full_name": "Other Tenant",
        "email": "ana@gmail.com",
        "city": "Jakarta",
        "loyalty_points": 100,
        "consent_whatsapp": True,
        "phone": "+6281234567890",
        "created_at": "2023-01-10 10:00+07",
    },
]

# key -> (where block, expected acme members)
CASES: dict[str, tuple[str, set[str]]] = {
    # strings
    "s_eq": ("{field: city, op: eq, value: Jakarta}", {"k1"}),
    "s_neq": ("{field: city, op: neq, value: Jakarta}", {"k2", "k3", "k4", "k6"}),
    "s_in": ("{field: city, op: in, value: [Jakarta, Bandung]}", {"k1", "k2"}),
    "s_not_in": ("{field: city, op: not_in, value: [Jakarta, Bandung]}", {"k3", "k4", "k6"}),
    "s_contains": ("{field: email, op: contains, value: gmail}", {"k1"}),
    "s_not_contains": ("{field: email, op: not_contains, value: gmail}", {"k2", "k3", "k4", "k6"}),
    "s_starts_with": ("{field: email, op: starts_with, value: budi}", {"k2"}),
    "s_ends_with": ('{field: email, op: ends_with, value: "@competitor.com"}', {"k2"}),
    "s_eq_case": ("{field: full_name, op: eq, value: dede kurnia}", set()),
    "s_ieq": ("{field: full_name, op: ieq, value: dede kurnia}", {"k6"}),
    "s_icontains": ("{field: full_name, op: icontains, value: ANA}", {"k1"}),
    "s_quote": ('{field: full_name, op: contains, value: "O\'Brien"}', {"k4"}),
    "s_matches": ("{field: email, op: matches, value: '^[a-c][a-z]*@'}", {"k1", "k2", "k4"}),
    "s_is_set": ("{field: email, op: is_set}", {"k1", "k2", "k4", "k6"}),
    "s_is_not_set": ("{field: email, op: is_not_set}", {"k3"}),
    "s_injection": (f'{{field: city, op: eq, value: "{INJECTION}"}}', set()),
    # numbers
    "n_eq": ("{field: loyalty_points, op: eq, value: 100}", {"k1"}),
    "n_neq": ("{field: loyalty_points, op: neq, value: 100}", {"k2", "k3", "k4", "k6"}),
    "n_gt": ("{field: loyalty_points, op: gt, value: 4999}", {"k2"}),
    "n_gte": ("{field: loyalty_points, op: gte, value: 4999}", {"k2", "k6"}),
    "n_lt": ("{field: loyalty_points, op: lt, value: 100}", {"k4"}),
    "n_lte": ("{field: loyalty_points, op: lte, value: 100}", {"k1", "k4"}),
    "n_between": ("{field: loyalty_points, op: between, value: [100, 4999]}", {"k1", "k6"}),
    "n_not_between": (
        "{field: loyalty_points, op: not_between, value: [100, 4999]}",
        {"k2", "k3", "k4"},
    ),
    "n_in": ("{field: loyalty_points, op: in, value: [0, 5000]}", {"k2", "k4"}),
    "n_not_in": ("{field: loyalty_points, op: not_in, value: [0, 5000]}", {"k1", "k3", "k6"}),
    "n_is_set": ("{field: loyalty_points, op: is_set}", {"k1", "k2", "k4", "k6"}),
    "n_is_not_set": ("{field: loyalty_points, op: is_not_set}", {"k3"}),
    # booleans (staging turns unknown consent into false)
    "b_is_true": ("{field: consent_whatsapp, op: is_true}", {"k1", "k4", "k6"}),
    "b_is_false": ("{field: consent_whatsapp, op: is_false}", {"k2", "k3"}),
    # arrays (staging never leaves tags NULL: unset = empty)
    "a_any": ("{field: tags, op: contains_any, value: [vip, do_not_contact]}", {"k1", "k2"}),
    "a_all": ("{field: tags, op: contains_all, value: [vip, newsletter]}", {"k1"}),
    "a_none": (
        "{field: tags, op: contains_none, value: [vip, do_not_contact]}",
        {"k3", "k4", "k6"},
    ),
    "a_is_set": ("{field: tags, op: is_set}", {"k1", "k2", "k4"}),
    "a_is_not_set": ("{field: tags, op: is_not_set}", {"k3", "k6"}),
    # timestamps compare by their date in the account's timezone
    "t_before": ("{field: created_at, op: before, value: 2024-03-01}", {"k1", "k6"}),
    "t_after": ("{field: created_at, op: after, value: 2024-03-01}", {"k4"}),
    "t_on": ("{field: created_at, op: on, value: 2024-03-01}", {"k2"}),
    "t_between": (
        "{field: created_at, op: between, value: [2024-03-01, 2024-03-15]}",
        {"k2", "k4"},
    ),
    "t_not_between": (
        "{field: created_at, op: not_between, value: ['2024-03-01', '2024-03-15']}",
        {"k1", "k3", "k6"},
    ),
    "t_within_last": (
        "{field: created_at, op: within_last, value: {days: 180}}",
        {"k2", "k4", "k6"},
    ),
    "t_more_than_ago": ("{field: created_at, op: more_than_ago, value: {days: 180}}", {"k1"}),
    "t_within_last_month": (
        "{field: created_at, op: within_last, value: {months: 1}}",
        {"k2", "k4"},
    ),
    "t_within_next": ("{field: created_at, op: within_next, value: {days: 10}}", {"k4"}),
    "t_this_month": ("{field: created_at, op: in_calendar, value: this_month}", {"k2", "k4"}),
    "t_last_year": ("{field: created_at, op: in_calendar, value: last_year}", {"k1", "k6"}),
    "t_today": ("{field: created_at, op: in_calendar, value: today}", {"k4"}),
    "t_is_not_set": ("{field: created_at, op: is_not_set}", {"k3"}),
    # dates
    "d_anniversary_3": (
        "{field: date_of_birth, op: anniversary_within_next, value: {days: 3}}",
        {"k1", "k6"},
    ),
    "d_anniversary_0": (
        "{field: date_of_birth, op: anniversary_within_next, value: {days: 0}}",
        {"k6"},
    ),
    "d_before": ("{field: date_of_birth, op: before, value: 1990-01-01}", {"k4"}),
    # custom fields: typed by the value, the operator or `type:`
    "c_num_gte": ("{field: custom.vip_level, op: gte, value: 2}", {"k1", "k2"}),
    "c_num_typed": ("{field: custom.vip_level, type: number, op: lt, value: 2}", {"k4"}),
    "c_str_eq": ("{field: custom.plan, op: eq, value: pro}", {"k1"}),
    "c_str_ieq": ("{field: custom.plan, op: ieq, value: pro}", {"k1", "k4"}),
    "c_str_neq": ("{field: custom.plan, op: neq, value: pro}", {"k2", "k3", "k4", "k6"}),
    "c_date_next": ("{field: custom.renewal, op: within_next, value: {days: 7}}", {"k1"}),
    "c_bool_true": ("{field: custom.beta, op: is_true}", {"k1"}),
    "c_bool_false": ("{field: custom.beta, op: is_false}", {"k2"}),
    "c_bool_unset": ("{field: custom.beta, type: boolean, op: is_not_set}", {"k3", "k4", "k6"}),
    "c_array_any": ("{field: custom.langs, op: contains_any, value: [en]}", {"k1"}),
    "c_missing_set": ("{field: custom.missing, op: is_set}", set()),
    "c_null_unset": ("{field: custom.plan, op: is_not_set}", {"k3", "k6"}),
    # the primary company only
    "co_employees": ("{field: company.employee_count, op: gte, value: 500}", {"k1"}),
    "co_unset": ("{field: company.company_name, op: is_not_set}", {"k3", "k4", "k6"}),
    "co_industry": ("{field: company.industry, op: eq, value: retail}", {"k2"}),
    # groups
    "g_not": ("not: {field: city, op: eq, value: Jakarta}", {"k2", "k3", "k4", "k6"}),
    "g_deep": (
        """
        all:
          - {field: consent_whatsapp, op: is_true}
          - any:
              - {field: loyalty_points, op: gte, value: 4999}
              - all:
                  - {field: city, op: eq, value: Jakarta}
                  - not: {field: tags, op: contains_any, value: [do_not_contact]}
        """,
        {"k1", "k6"},
    ),
    "g_list_is_all": (
        """
        - {field: lifecycle_stage, op: eq, value: customer}
        - {field: loyalty_points, op: gt, value: 0}
        """,
        {"k1", "k6"},
    ),
    "g_not_list": (
        "not: [{field: consent_whatsapp, op: is_true}, {field: city, op: neq, value: Medan}]",
        {"k2", "k3", "k6"},
    ),
}

EXCLUDE = (
    "{field: lifecycle_stage, op: eq, value: customer}",
    "{field: email, op: ends_with, value: gmail.com}",
    {"k4", "k6"},
)


@pytest.fixture(scope="module")
def built(
    pg_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, dict[tuple[str, str], set[str]]]]:
    project = copy_project(tmp_path_factory.mktemp("segments_operators") / "project")
    with psycopg.connect(dbname=pg_database, autocommit=True) as db, project_dir(project):
        for table in ("accounts", "contacts", "companies", "contact_companies"):
            db.execute(f"truncate crm_raw.{table}")
        insert_accounts(db, {"acme": "Asia/Jakarta", "beta": "Asia/Makassar"})
        insert_contacts(db, CONTACTS)
        insert_companies(
            db,
            [
                {"company_id": "co1", "account_id": "acme", "name": "Big", "employee_count": 1000},
                {
                    "company_id": "co2",
                    "account_id": "acme",
                    "name": "Small",
                    "employee_count": 50,
                    "industry": "Retail",
                },
                {"company_id": "co3", "account_id": "acme", "name": "Side", "employee_count": 5000},
            ],
        )
        link_company(db, "acme", "k1", "co1", True)
        link_company(db, "acme", "k2", "co2", True)
        link_company(db, "acme", "k4", "co3", False)
        for key, (where, _) in CASES.items():
            write_def(project, "acme", key, segment_yaml("acme", key, where))
        write_def(
            project,
            "acme",
            "x_exclude",
            segment_yaml("acme", "x_exclude", EXCLUDE[0]) + "exclude:\n  " + EXCLUDE[1] + "\n",
        )
        write_def(
            project,
            "acme",
            "x_disabled",
            segment_yaml("acme", "x_disabled", "{field: city, op: is_set}", enabled="false"),
        )
        build(AS_OF)
        yield project, members(db)


@pytest.mark.parametrize("key", sorted(CASES))
def test_operator(built: tuple[Path, dict], key: str) -> None:
    _, found = built
    assert found.get(("acme", key), set()) == CASES[key][1]


def test_exclude_is_and_not(built: tuple[Path, dict]) -> None:
    _, found = built
    assert found[("acme", "x_exclude")] == EXCLUDE[2]


def test_contacts_created_after_as_of_are_never_members(built: tuple[Path, dict]) -> None:
    _, found = built
    assert all("k5" not in contacts for contacts in found.values())
    # k5 matches s_eq's rule (city Jakarta) apart from its creation date
    assert "k1" in found[("acme", "s_eq")]


def test_account_scoped_segments_only_see_their_account(built: tuple[Path, dict]) -> None:
    _, found = built
    assert {account for account, _ in found} == {"acme"}


def test_injected_value_is_data(built: tuple[Path, dict], db: psycopg.Connection) -> None:
    assert db.execute("select count(*) from crm_raw.contacts").fetchone()[0] == len(CONTACTS)


def test_disabled_segment_is_catalogued_not_built(
    built: tuple[Path, dict], db: psycopg.Connection
) -> None:
    _, found = built
    assert ("acme", "x_disabled") not in found
    row = db.execute(
        "select enabled, model_name from segments_audit.segment_catalogue "
        "where account_id = 'acme' and segment_key = 'x_disabled'"
    ).fetchone()
    assert row == (False, "seg__acme__x_disabled")
    exists = db.execute("select to_regclass('segments_audit.seg__acme__x_disabled')").fetchone()
    assert exists == (None,)


def test_membership_carries_as_of_and_hash(
    built: tuple[Path, dict], db: psycopg.Connection
) -> None:
    rows = db.execute(
        "select distinct m.as_of_date::text, m.definition_hash = c.definition_hash "
        "from segments_audit.segment_memberships as m "
        "join segments_audit.segment_catalogue as c using (account_id, segment_key)"
    ).fetchall()
    assert rows == [(AS_OF, True)]
